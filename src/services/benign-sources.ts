// Known-benign sources (SPEC §1 whitelist): a lookup from an address to its source and discount factor.
import { readFileSync } from 'node:fs';
import { type RangeSet, RangeSetBuilder } from '../core/cidr-aggregate.js';
import { type IntervalTable, IntervalTableBuilder } from '../core/interval-table.js';
import type { IpAddress } from '../core/ip.js';
import type { DbExecutor } from '../store/database.js';

export interface BenignMatch {
  readonly source: string;
  /** 0–1, multiplied into the final score. */
  readonly factor: number;
}

export interface BenignSources {
  match(ip: IpAddress): BenignMatch | null;
  /**
   * Every point (128-bit key, IPv4 mapped) where some source's range starts or ends + 1: between two
   * consecutive points `match` gives one answer. The blacklist splits feed CIDRs there (decision 0703);
   * without it a CIDR is scored by its first address.
   */
  boundaries?(): Iterable<bigint>;
}

export const NO_BENIGN_SOURCES: BenignSources = { match: () => null };

export interface BenignSourceDefinition {
  readonly name: string;
  readonly factor: number;
  readonly kind: string;
  /** File name inside the shipped folder. */
  readonly file: string;
}

/** The folder of shipped lists and their manifest (`sources.json`), beside `src/` and `dist/`. */
export const SHIPPED_BENIGN_DIR = new URL('../../data-files/benign/', import.meta.url);

/** Builds an interval table from list lines; comments, blanks and non-address lines are skipped. */
export function benignTable(lines: Iterable<string>): {
  table: IntervalTable;
  entries: number;
  set: RangeSet;
} {
  const builder = new RangeSetBuilder();
  let entries = 0;
  for (const raw of lines) {
    const hash = raw.indexOf('#');
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line !== '' && builder.add(line)) entries++;
  }
  const set = builder.build();
  const table = new IntervalTableBuilder();
  for (let i = 0; i + 1 < set.v4.length; i += 2) table.addV4(set.v4[i] ?? 0, set.v4[i + 1] ?? 0, 0);
  for (let i = 0; i + 1 < set.v6.length; i += 2) table.addV6(set.v6[i] ?? 0n, set.v6[i + 1] ?? 0n, 0);
  return { table: table.build(), entries, set };
}

interface LoadedSource {
  readonly definition: BenignSourceDefinition;
  table: IntervalTable;
  entries: number;
  set: RangeSet;
}

const V4_MAPPED_BASE = 0xffffn << 32n;

/**
 * The whitelist from lists: each source an interval table (O(log n) per look-up, microseconds). When an
 * address is in several sources, the one with the lowest factor wins (the strongest evidence of benignity).
 */
export class ListBenignSources implements BenignSources {
  readonly #sources: LoadedSource[];

  constructor(sources: readonly { definition: BenignSourceDefinition; lines: Iterable<string> }[]) {
    this.#sources = sources
      .map(({ definition, lines }) => ({ definition, ...benignTable(lines) }))
      .sort((a, b) => a.definition.factor - b.definition.factor);
  }

  /** The shipped lists named in `sources.json` (read synchronously: they total under 100 kB). */
  static shipped(dir: URL = SHIPPED_BENIGN_DIR): ListBenignSources {
    const manifest = JSON.parse(readFileSync(new URL('sources.json', dir), 'utf8')) as {
      sources: BenignSourceDefinition[];
    };
    return new ListBenignSources(
      manifest.sources.map((definition) => ({
        definition,
        lines: readFileSync(new URL(definition.file, dir), 'utf8').split(/\r?\n/),
      })),
    );
  }

  match(ip: IpAddress): BenignMatch | null {
    for (const source of this.#sources) {
      if (source.table.find(ip.key) >= 0) {
        return { source: source.definition.name, factor: source.definition.factor };
      }
    }
    return null;
  }

  *boundaries(): Generator<bigint> {
    for (const source of this.#sources) {
      const { v4, v6 } = source.set;
      for (let i = 0; i + 1 < v4.length; i += 2) {
        yield V4_MAPPED_BASE + BigInt(v4[i] ?? 0);
        yield V4_MAPPED_BASE + BigInt(v4[i + 1] ?? 0) + 1n;
      }
      for (let i = 0; i + 1 < v6.length; i += 2) {
        yield v6[i] ?? 0n;
        yield (v6[i + 1] ?? 0n) + 1n;
      }
    }
  }

  /** Names, factors and entry counts, in match order. */
  describe(): { name: string; factor: number; kind: string; entries: number }[] {
    return this.#sources.map((s) => ({ ...s.definition, entries: s.entries }));
  }

  has(name: string): boolean {
    return this.#sources.some((s) => s.definition.name === name);
  }

  /** Replaces one source's list in memory; returns the number of usable entries, or null for an unknown source. */
  replace(name: string, lines: Iterable<string>): number | null {
    const source = this.#sources.find((s) => s.definition.name === name);
    if (!source) return null;
    const built = benignTable(lines);
    source.table = built.table;
    source.entries = built.entries;
    source.set = built.set;
    return built.entries;
  }

  /** Applies the lists an operator refreshed (`vakt whitelist refresh`), stored in the database. */
  async applyStored(db: DbExecutor): Promise<void> {
    const rows = await db.selectFrom('whitelist_lists').selectAll().execute();
    for (const row of rows) this.replace(row.source, row.entries.split('\n'));
  }
}

/** Stores an operator-refreshed list for `source` (every instance applies it at its next start). */
export async function saveBenignList(db: DbExecutor, source: string, lines: readonly string[], now: number) {
  const entries = lines.join('\n');
  await db
    .insertInto('whitelist_lists')
    .values({ source, entries, updated_at: now })
    .onConflict((oc) => oc.column('source').doUpdateSet({ entries, updated_at: now }))
    .execute();
}
