// Streaming writers for the generated blacklist formats (SPEC §3.2): json, plaintext, csv, nginx, ipset, nftables.

/** One blacklist line: a single address or (with `aggregate`) a CIDR, plus what the JSON/CSV show. */
export interface BlacklistEntry {
  /** Canonical address ("203.0.113.42") or CIDR ("45.83.0.0/24"); a /32 or /128 may be written either way. */
  readonly ip: string;
  readonly version: 4 | 6;
  readonly confidenceLevel: number;
  /** Epoch milliseconds (SPEC §2.5). */
  readonly lastSeen: number;
  readonly sessions: number;
  readonly protocols: readonly string[];
  readonly countryCode: string | null;
  readonly asn: string | null;
  readonly asnOrg: string | null;
}

/** `meta` of the JSON format (SPEC §3.2). `count` is the number of listed IPs (the units charged). */
export interface BlacklistMeta {
  readonly generatedAt: number;
  readonly scoreMinimum: number;
  readonly limit: number;
  readonly count: number;
  readonly truncated: boolean;
}

export type BlacklistFormat = 'json' | 'plaintext' | 'csv' | 'ipset' | 'nftables' | 'nginx';

export const BLACKLIST_FORMATS: readonly BlacklistFormat[] = [
  'json',
  'plaintext',
  'csv',
  'ipset',
  'nftables',
  'nginx',
];

/** Content-Type per format; firewall scripts are plain text so that `curl | ipset restore` just works. */
export const BLACKLIST_CONTENT_TYPES: Readonly<Record<BlacklistFormat, string>> = {
  json: 'application/json; charset=utf-8',
  plaintext: 'text/plain; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  ipset: 'text/plain; charset=utf-8',
  nftables: 'text/plain; charset=utf-8',
  nginx: 'text/plain; charset=utf-8',
};

export interface IpsetOptions {
  /** Live set names (ipset allows at most 31 characters). */
  readonly v4SetName?: string;
  readonly v6SetName?: string;
  /**
   * Emit `create <live> … -exist` so that a first load works on a host without the sets. ipset only
   * accepts that line when an existing live set has the same `maxelem`, hence the stable maxelem floor
   * below; a caller that knows the live sets exist (the guard after its first load) may turn it off.
   */
  readonly createLiveSets?: boolean;
  /**
   * Smallest `maxelem` written (default 1,048,576). Bigger lists get the next power of two ≥ 1.25 × count.
   * A stable value keeps `create -exist` valid from one load to the next (decision 0202).
   */
  readonly minMaxelem?: number;
  /** Entry counts per family when known (better `hashsize`); otherwise `meta.count` is used for both. */
  readonly v4Count?: number;
  readonly v6Count?: number;
}

export interface NftablesOptions {
  /** `inet` table name (default `vakt`). The whole table is replaced on every load. */
  readonly table?: string;
  /** Input-hook priority (default -10: before the usual `filter` chains at 0). */
  readonly priority?: number;
}

export interface BlacklistFormatOptions {
  readonly meta: BlacklistMeta;
  readonly ipset?: IpsetOptions;
  readonly nftables?: NftablesOptions;
}

/**
 * Canonical addresses or CIDR texts and nothing else, as text: each one followed by "\n" — exactly the
 * plaintext body of those entries. The blacklist service streams address-only lists this way (one
 * string per page instead of an object per row); the version of a line is IPv6 when it holds a ":".
 */
export class AddressLines {
  /**
   * `generated`: the text was written by code that emits nothing but address characters (the CIDR
   * aggregator), so the per-page safety scan is skipped; text read from the database is always scanned.
   */
  constructor(
    readonly text: string,
    readonly generated = false,
  ) {}
}

/**
 * Rows one by one, or (from the blacklist service) whole pages of rows or AddressLines: one await per
 * page, not per row.
 */
type Rows =
  | Iterable<BlacklistEntry>
  | AsyncIterable<BlacklistEntry | readonly BlacklistEntry[] | AddressLines>;

const BATCH = 2000;

/** Regroups any Rows into arrays (or AddressLines) so the writers' per-row work is synchronous. */
async function* batches(rows: Rows): AsyncGenerator<readonly BlacklistEntry[] | AddressLines> {
  let pending: BlacklistEntry[] = [];
  if (Symbol.iterator in rows) {
    for (const row of rows) {
      pending.push(row);
      if (pending.length >= BATCH) {
        yield pending;
        pending = [];
      }
    }
  } else {
    for await (const item of rows) {
      if (Array.isArray(item) || item instanceof AddressLines) {
        if (pending.length > 0) {
          yield pending;
          pending = [];
        }
        yield item as readonly BlacklistEntry[] | AddressLines;
        continue;
      }
      pending.push(item as BlacklistEntry);
      if (pending.length >= BATCH) {
        yield pending;
        pending = [];
      }
    }
  }
  if (pending.length > 0) yield pending;
}

/** Like `batches`, with AddressLines turned into entries (address and version only), for per-row writers. */
async function* entryBatches(rows: Rows): AsyncGenerator<readonly BlacklistEntry[]> {
  for await (const batch of batches(rows)) {
    yield batch instanceof AddressLines ? linesToEntries(checkedLines(batch)) : batch;
  }
}

const NO_DETAILS = {
  confidenceLevel: 0,
  lastSeen: 0,
  sessions: 0,
  protocols: [],
  countryCode: null,
  asn: null,
  asnOrg: null,
} as const;

function linesToEntries(text: string): BlacklistEntry[] {
  const out: BlacklistEntry[] = [];
  let start = 0;
  for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
    const ip = text.slice(start, end);
    out.push({ ...NO_DETAILS, ip, version: ip.includes(':') ? 6 : 4 });
    start = end + 1;
  }
  return out;
}

// Output is batched into chunks of about this many characters: one yield per row would cost a
// microtask (and, behind a stream, a write) per line on lists of 10^5 rows.
const CHUNK_CHARS = 64 * 1024;

class ChunkBuffer {
  #parts: string[] = [];
  #size = 0;
  push(text: string): boolean {
    this.#parts.push(text);
    this.#size += text.length;
    return this.#size >= CHUNK_CHARS;
  }
  take(): string {
    const chunk = this.#parts.join('');
    this.#parts = [];
    this.#size = 0;
    return chunk;
  }
  get empty(): boolean {
    return this.#size === 0;
  }
}

// Firewall scripts splice entries into command syntax, so an entry must be nothing but an address or
// CIDR: a stray newline or brace from a corrupted row would otherwise inject commands.
const V4_ENTRY = /^[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?:\/[0-9]{1,2})?$/;
const V6_ENTRY = /^[0-9a-f:.]{2,45}(?:\/[0-9]{1,3})?$/;

function checkedEntry(entry: BlacklistEntry): string {
  const pattern = entry.version === 4 ? V4_ENTRY : V6_ENTRY;
  if (!pattern.test(entry.ip) || (entry.version === 4) === entry.ip.includes(':')) {
    throw new RangeError(`blacklist entry is not a canonical IPv${entry.version} address or CIDR`);
  }
  return entry.ip;
}

// AddressLines are checked a page at a time with one scan: only address characters, "/" and line ends,
// no empty line, a final "\n". That is what keeps commands from being spliced in; the lines come from
// canonical stored text or from the aggregator, so a per-line parse would only repeat their construction.
const NOT_ADDRESS_TEXT = /[^0-9a-f.:/\n]/;

function checkedLines(lines: AddressLines): string {
  const text = lines.text;
  if (text === '' || lines.generated) return text;
  if (
    NOT_ADDRESS_TEXT.test(text) ||
    text.charCodeAt(0) === 10 ||
    text.charCodeAt(text.length - 1) !== 10 ||
    text.includes('\n\n')
  ) {
    throw new RangeError('blacklist lines hold something other than canonical addresses or CIDRs');
  }
  return text;
}

/** Splits "a/n" into the bare address and the prefix length (full length when there is no "/"). */
function splitEntry(text: string, version: 4 | 6): { address: string; prefixLength: number } {
  const slash = text.indexOf('/');
  if (slash < 0) return { address: text, prefixLength: version === 4 ? 32 : 128 };
  return { address: text.slice(0, slash), prefixLength: Number(text.slice(slash + 1)) };
}

function isSingle(text: string, version: 4 | 6): boolean {
  return splitEntry(text, version).prefixLength === (version === 4 ? 32 : 128);
}

/** `plaintext`: one address or CIDR per line (SPEC §3.2), as CSF and `ipset` updaters read it. */
export async function* writePlaintext(rows: Rows): AsyncGenerator<string> {
  const buffer = new ChunkBuffer();
  for await (const batch of batches(rows)) {
    if (batch instanceof AddressLines) {
      if (buffer.push(checkedLines(batch))) yield buffer.take();
      continue;
    }
    for (const row of batch) {
      if (buffer.push(`${checkedEntry(row)}\n`)) yield buffer.take();
    }
  }
  if (!buffer.empty) yield buffer.take();
}

/** nginx `geo` include: `<ip> 1;` lines (SPEC §3.2). */
export async function* writeNginx(rows: Rows, meta: BlacklistMeta): AsyncGenerator<string> {
  const buffer = new ChunkBuffer();
  buffer.push(
    `# Vakt blacklist, generated ${new Date(meta.generatedAt).toISOString()}, ${meta.count} addresses\n`,
  );
  for await (const batch of batches(rows)) {
    if (batch instanceof AddressLines) {
      if (buffer.push(checkedLines(batch).replaceAll('\n', ' 1;\n'))) yield buffer.take();
      continue;
    }
    for (const row of batch) {
      if (buffer.push(`${checkedEntry(row)} 1;\n`)) yield buffer.take();
    }
  }
  yield buffer.take();
}

function dataObject(row: BlacklistEntry): Record<string, unknown> {
  // Fixed key order, exactly the SPEC §3.2 item shape.
  return {
    ip: row.ip,
    confidenceLevel: row.confidenceLevel,
    lastSeen: row.lastSeen,
    sessions: row.sessions,
    protocols: row.protocols,
    countryCode: row.countryCode,
    asn: row.asn,
    asnOrg: row.asnOrg,
  };
}

/** JSON `{"meta": {…}, "data": […]}` (SPEC §3.2), streamed item by item. */
export async function* writeJson(rows: Rows, meta: BlacklistMeta): AsyncGenerator<string> {
  const buffer = new ChunkBuffer();
  const head = {
    generatedAt: meta.generatedAt,
    scoreMinimum: meta.scoreMinimum,
    limit: meta.limit,
    count: meta.count,
    truncated: meta.truncated,
  };
  buffer.push(`{"meta":${JSON.stringify(head)},"data":[`);
  let first = true;
  for await (const batch of entryBatches(rows))
    for (const row of batch) {
      const item = JSON.stringify(dataObject(row));
      if (buffer.push(first ? item : `,${item}`)) yield buffer.take();
      first = false;
    }
  buffer.push(']}');
  yield buffer.take();
}

const CSV_HEADER = 'ip,confidenceLevel,lastSeen,sessions,protocols,countryCode,asn,asnOrg';

/**
 * One CSV field: RFC 4180 quoting when needed, and a leading `'` on text that a spreadsheet would run
 * as a formula (`=`, `+`, `-`, `@`, tab, CR; OWASP "CSV injection") — `asnOrg` and protocols come from
 * outside.
 */
export function csvField(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  let text = value;
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  if (/[",\r\n]/.test(text) || text !== value) return `"${text.replaceAll('"', '""')}"`;
  return text;
}

/** CSV: a header line, then one row per entry; protocols joined with `|` inside one field. */
export async function* writeCsv(rows: Rows): AsyncGenerator<string> {
  const buffer = new ChunkBuffer();
  buffer.push(`${CSV_HEADER}\r\n`);
  for await (const batch of entryBatches(rows))
    for (const row of batch) {
      const line = [
        csvField(row.ip),
        csvField(row.confidenceLevel),
        csvField(row.lastSeen),
        csvField(row.sessions),
        csvField(row.protocols.join('|')),
        csvField(row.countryCode),
        csvField(row.asn),
        csvField(row.asnOrg),
      ].join(',');
      if (buffer.push(`${line}\r\n`)) yield buffer.take();
    }
  yield buffer.take();
}

const IPSET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,30}$/;
const DEFAULT_MIN_MAXELEM = 1 << 20;

function nextPowerOfTwo(value: number): number {
  let result = 1;
  while (result < value) result *= 2;
  return result;
}

/** `maxelem` for a set of `count` entries: a stable floor, or the next power of two ≥ 1.25 × count. */
export function ipsetMaxelem(count: number, minMaxelem = DEFAULT_MIN_MAXELEM): number {
  return Math.max(minMaxelem, nextPowerOfTwo(Math.ceil(count * 1.25)));
}

/** Initial `hashsize`: about one bucket per four entries (ipset grows it anyway), 1024 to 2^20. */
export function ipsetHashsize(count: number): number {
  return Math.min(1 << 20, Math.max(1024, nextPowerOfTwo(Math.ceil(count / 4))));
}

/** Temp set name: the live name cut to fit, plus a suffix from the generation time (deterministic). */
function tempSetName(live: string, generatedAt: number): string {
  const suffix = `-t${(generatedAt % 36 ** 6).toString(36)}`;
  return `${live.slice(0, 31 - suffix.length)}${suffix}`;
}

function checkIpsetName(name: string): string {
  if (!IPSET_NAME.test(name)) throw new RangeError(`invalid ipset name ${JSON.stringify(name)} (1-31 chars)`);
  return name;
}

/**
 * A script for `ipset restore` (SPEC §3.2, §8; case 007). For v4 and v6 it creates a temp `hash:net`
 * set sized from the content, fills it, makes sure the live set exists, swaps the temp in and destroys
 * it: an existing live set is never flushed, emptied or missing, and the swap keeps iptables rules
 * that reference the live set valid. If `ipset restore` fails midway, the live sets are untouched and
 * only the temp set may be left (the caller destroys it).
 */
export async function* writeIpset(
  rows: Rows,
  meta: BlacklistMeta,
  options: IpsetOptions = {},
): AsyncGenerator<string> {
  const live = {
    4: checkIpsetName(options.v4SetName ?? 'vakt-v4'),
    6: checkIpsetName(options.v6SetName ?? 'vakt-v6'),
  };
  if (live[4] === live[6]) throw new RangeError('the IPv4 and IPv6 ipset names must differ');
  const temp = { 4: tempSetName(live[4], meta.generatedAt), 6: tempSetName(live[6], meta.generatedAt) };
  if (temp[4] === temp[6]) temp[6] = tempSetName(`${live[6]}6`, meta.generatedAt);
  const family = { 4: 'inet', 6: 'inet6' };
  const minMaxelem = options.minMaxelem ?? DEFAULT_MIN_MAXELEM;
  const count = { 4: options.v4Count ?? meta.count, 6: options.v6Count ?? meta.count };
  const maxelem = { 4: ipsetMaxelem(count[4], minMaxelem), 6: ipsetMaxelem(count[6], minMaxelem) };
  const createLine = (name: string, version: 4 | 6) =>
    `create ${name} hash:net family ${family[version]} hashsize ${ipsetHashsize(count[version])} maxelem ${maxelem[version]} -exist\n`;

  const buffer = new ChunkBuffer();
  buffer.push(
    `# Vakt blacklist for ipset restore, generated ${new Date(meta.generatedAt).toISOString()}, ${meta.count} addresses\n`,
  );
  // Live sets first: if ipset refuses one (an existing set of another type or maxelem), the restore stops
  // before any temp set exists, so nothing is left behind.
  if (options.createLiveSets ?? true) {
    for (const version of [4, 6] as const) buffer.push(createLine(live[version], version));
  }
  for (const version of [4, 6] as const) {
    // `-exist` + `flush`: a temp set left by an earlier failed restore of the same list is reused.
    buffer.push(createLine(temp[version], version));
    buffer.push(`flush ${temp[version]}\n`);
  }
  for await (const batch of entryBatches(rows))
    for (const row of batch) {
      const entry = checkedEntry(row);
      const lines =
        // hash:net cannot hold a /0; two halves cover the same addresses.
        entry === '0.0.0.0/0'
          ? ['0.0.0.0/1', '128.0.0.0/1']
          : entry === '::/0'
            ? ['::/1', '8000::/1']
            : [entry];
      for (const line of lines) {
        if (buffer.push(`add ${temp[row.version]} ${line} -exist\n`)) yield buffer.take();
      }
    }
  for (const version of [4, 6] as const) {
    buffer.push(`swap ${temp[version]} ${live[version]}\n`);
    buffer.push(`destroy ${temp[version]}\n`);
  }
  yield buffer.take();
}

const NFT_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
// Elements per `add element` statement: keeps each netlink batch message and parser input modest.
const NFT_BATCH = 1000;

/**
 * An `nft -f` file that replaces `table inet <name>` in one transaction (SPEC §3.2, §8; case 008):
 * `table … {}` + `delete table …` + the full definition, then the elements. Single addresses go to plain
 * hash sets (`v4`, `v6`), CIDRs to small `flags interval` sets (`v4net`, `v6net`, with `auto-merge` so
 * overlapping CIDRs do not fail the load); IPv6 lives in the same `inet` table. Empty sets are declared
 * without an `elements` clause, which nft rejects when empty.
 */
export async function* writeNftables(
  rows: Rows,
  meta: BlacklistMeta,
  options: NftablesOptions = {},
): AsyncGenerator<string> {
  const table = options.table ?? 'vakt';
  if (!NFT_NAME.test(table)) throw new RangeError(`invalid nftables table name ${JSON.stringify(table)}`);
  const priority = options.priority ?? -10;
  if (!Number.isInteger(priority) || Math.abs(priority) > 1000)
    throw new RangeError('nftables priority is an integer');

  const buffer = new ChunkBuffer();
  buffer.push(
    [
      `# Vakt blacklist for nft -f, generated ${new Date(meta.generatedAt).toISOString()}, ${meta.count} addresses`,
      `table inet ${table} {}`,
      `delete table inet ${table}`,
      `table inet ${table} {`,
      '  set v4 {',
      '    type ipv4_addr',
      '  }',
      '  set v4net {',
      '    type ipv4_addr',
      '    flags interval',
      '    auto-merge',
      '  }',
      '  set v6 {',
      '    type ipv6_addr',
      '  }',
      '  set v6net {',
      '    type ipv6_addr',
      '    flags interval',
      '    auto-merge',
      '  }',
      '  chain input {',
      `    type filter hook input priority ${priority}; policy accept;`,
      '    ip saddr @v4 drop',
      '    ip saddr @v4net drop',
      '    ip6 saddr @v6 drop',
      '    ip6 saddr @v6net drop',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const pending: Record<'v4' | 'v4net' | 'v6' | 'v6net', string[]> = { v4: [], v4net: [], v6: [], v6net: [] };
  const flush = (set: keyof typeof pending): boolean => {
    const elements = pending[set];
    if (elements.length === 0) return false;
    pending[set] = [];
    return buffer.push(`add element inet ${table} ${set} { ${elements.join(', ')} }\n`);
  };
  for await (const batch of entryBatches(rows))
    for (const row of batch) {
      const entry = checkedEntry(row);
      const single = isSingle(entry, row.version);
      const set = row.version === 4 ? (single ? 'v4' : 'v4net') : single ? 'v6' : 'v6net';
      pending[set].push(single ? splitEntry(entry, row.version).address : entry);
      // Interval sets are written in one statement each, at the end: nft's auto-merge fails to load
      // adjacent intervals split across statements ("File exists"). They stay small (SPEC §3.2).
      if (single && pending[set].length >= NFT_BATCH && flush(set)) yield buffer.take();
    }
  for (const set of ['v4', 'v4net', 'v6', 'v6net'] as const) flush(set);
  yield buffer.take();
}

/** Dispatches to the writer for `format`. The result streams; nothing holds the whole list. */
export function formatBlacklist(
  format: BlacklistFormat,
  rows: Rows,
  options: BlacklistFormatOptions,
): AsyncGenerator<string> {
  switch (format) {
    case 'json':
      return writeJson(rows, options.meta);
    case 'plaintext':
      return writePlaintext(rows);
    case 'csv':
      return writeCsv(rows);
    case 'nginx':
      return writeNginx(rows, options.meta);
    case 'ipset':
      return writeIpset(rows, options.meta, options.ipset);
    case 'nftables':
      return writeNftables(rows, options.meta, options.nftables);
  }
}
