// Offline country and ASN look-ups (SPEC §3.1 geolocation) from the pinned @ip-location-db CSV tables, held in memory.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type IntervalTable, IntervalTableBuilder } from '../core/interval-table.js';
import type { IpAddress } from '../core/ip.js';

export interface GeoInfo {
  /** ISO 3166-1 alpha-2, upper case, or null. */
  readonly countryCode: string | null;
  /** Digits only (SPEC §3.1), or null. */
  readonly asn: string | null;
  readonly asnOrg: string | null;
}

export interface GeoLookup {
  /** Never throws; all-null until the tables are loaded or when the address is in no table. */
  lookup(ip: IpAddress): GeoInfo;
  /** True once the tables are in memory. */
  readonly loaded: boolean;
  /** Starts loading (once) and resolves when done; a failed load leaves the lookup answering nulls. */
  load(): Promise<void>;
}

const EMPTY: GeoInfo = { countryCode: null, asn: null, asnOrg: null };

export const NO_GEO: GeoLookup = { lookup: () => EMPTY, loaded: false, load: async () => {} };

/** Where the pinned packages keep their files (node_modules resolution). */
export function geoDataFiles(): { country: { v4: string; v6: string }; asn: { v4: string; v6: string } } {
  const require = createRequire(import.meta.url);
  const countryDir = dirname(require.resolve('@ip-location-db/geo-whois-asn-country/package.json'));
  const asnDir = dirname(require.resolve('@ip-location-db/asn/package.json'));
  return {
    country: {
      v4: join(countryDir, 'geo-whois-asn-country-ipv4-num.csv'),
      v6: join(countryDir, 'geo-whois-asn-country-ipv6-num.csv'),
    },
    asn: { v4: join(asnDir, 'asn-ipv4-num.csv'), v6: join(asnDir, 'asn-ipv6-num.csv') },
  };
}

/** Lines per slice before yielding to the event loop, so a background load never stalls requests long. */
const SLICE = 20_000;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Parses `start,end,rest` rows of the `-num.csv` files; `rest` is the remainder after the second comma
 * (a country code, or `asn,org` with the org possibly quoted).
 */
async function loadCsv(
  path: string,
  builder: IntervalTableBuilder,
  v6: boolean,
  valueFor: (rest: string) => number,
): Promise<void> {
  const text = await readFile(path, 'utf8');
  let position = 0;
  let lines = 0;
  while (position < text.length) {
    let end = text.indexOf('\n', position);
    if (end < 0) end = text.length;
    const line = text.slice(position, end);
    position = end + 1;
    const first = line.indexOf(',');
    const second = first < 0 ? -1 : line.indexOf(',', first + 1);
    if (second < 0) continue;
    const value = valueFor(line.slice(second + 1).replace(/\r$/, ''));
    if (value < 0) continue;
    if (v6) builder.addV6(BigInt(line.slice(0, first)), BigInt(line.slice(first + 1, second)), value);
    else builder.addV4(Number(line.slice(0, first)), Number(line.slice(first + 1, second)), value);
    if (++lines % SLICE === 0) await yieldToLoop();
  }
}

function unquote(field: string): string {
  return field.startsWith('"') && field.endsWith('"') ? field.slice(1, -1).replace(/""/g, '"') : field;
}

export interface GeoLoadStats {
  readonly ranges: number;
  readonly milliseconds: number;
  readonly heapBytes: number;
}

/** The in-memory implementation: country and ASN interval tables with small string tables beside them. */
export class CsvGeoLookup implements GeoLookup {
  #country: IntervalTable | null = null;
  #asn: IntervalTable | null = null;
  #countries: string[] = [];
  #asns: { asn: string; org: string | null }[] = [];
  #loading: Promise<void> | null = null;
  stats: GeoLoadStats | null = null;

  constructor(private readonly files = geoDataFiles()) {}

  get loaded(): boolean {
    return this.#country !== null;
  }

  load(): Promise<void> {
    this.#loading ??= this.#load().catch(() => {
      // Enrichment must never break a request: without tables every lookup answers nulls.
    });
    return this.#loading;
  }

  async #load(): Promise<void> {
    const started = performance.now();
    const heapBefore = process.memoryUsage().heapUsed;
    const countryIndex = new Map<string, number>();
    const countries: string[] = [];
    const country = new IntervalTableBuilder();
    const countryValue = (rest: string) => {
      const code = rest.trim().toUpperCase();
      if (!/^[A-Z]{2}$/.test(code)) return -1;
      let index = countryIndex.get(code);
      if (index === undefined) {
        index = countries.length;
        countries.push(code);
        countryIndex.set(code, index);
      }
      return index;
    };
    await loadCsv(this.files.country.v4, country, false, countryValue);
    await loadCsv(this.files.country.v6, country, true, countryValue);

    const asnIndex = new Map<string, number>();
    const asns: { asn: string; org: string | null }[] = [];
    const asn = new IntervalTableBuilder();
    const asnValue = (rest: string) => {
      let index = asnIndex.get(rest);
      if (index === undefined) {
        const comma = rest.indexOf(',');
        const number = (comma < 0 ? rest : rest.slice(0, comma)).replace(/^AS/i, '');
        if (!/^[0-9]+$/.test(number)) return -1;
        const org = comma < 0 ? '' : unquote(rest.slice(comma + 1));
        index = asns.length;
        asns.push({ asn: number, org: org === '' ? null : org });
        asnIndex.set(rest, index);
      }
      return index;
    };
    await loadCsv(this.files.asn.v4, asn, false, asnValue);
    await loadCsv(this.files.asn.v6, asn, true, asnValue);

    this.#countries = countries;
    this.#asns = asns;
    this.#asn = asn.build();
    this.#country = country.build();
    this.stats = {
      ranges: this.#country.size + this.#asn.size,
      milliseconds: Math.round(performance.now() - started),
      heapBytes: process.memoryUsage().heapUsed - heapBefore,
    };
  }

  lookup(ip: IpAddress): GeoInfo {
    if (this.#country === null || this.#asn === null) return EMPTY;
    const c = this.#country.find(ip.key);
    const a = this.#asn.find(ip.key);
    const record = a >= 0 ? this.#asns[a] : undefined;
    return {
      countryCode: c >= 0 ? (this.#countries[c] ?? null) : null,
      asn: record?.asn ?? null,
      asnOrg: record?.org ?? null,
    };
  }
}
