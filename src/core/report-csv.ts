// Structural parsing of bulk-report CSV (SPEC §3.4): quoting, delimiter and layout detection, AbuseIPDB category ids.

import { fromAbuseIpdbCategory } from './categories.js';
import { parseIp } from './ip.js';

export type ReportCsvLayout = 'positional' | 'abuseipdb';

/** One data row's raw fields; semantic validation (IP, category, timestamp) is the service's job. */
export interface ReportCsvRecord {
  /** Data row number, counted from 1; a header line is not counted. */
  readonly row: number;
  readonly ip: string;
  /**
   * Positional layout: the Category field split on commas, raw. AbuseIPDB layout: ids already mapped to
   * our category names (duplicates removed, first is primary). Empty when the field is empty.
   */
  readonly categories: readonly string[];
  readonly protocol?: string;
  readonly comment?: string;
  /** AbuseIPDB `ReportDate`, raw. */
  readonly timestamp?: string;
}

/** A structurally broken row, in the SPEC §3.4 error shape. */
export interface ReportCsvRowError {
  readonly row: number;
  readonly ip: string;
  readonly error: string;
  /** A SPEC §2.2 stable code; the service may pass these rows straight into the response. */
  readonly code: 'invalid_parameter';
}

export type ReportCsvRow = ReportCsvRecord | ReportCsvRowError;

export type ReportCsvResult =
  | { ok: true; layout: ReportCsvLayout; delimiter: ',' | ';'; hasHeader: boolean; rows: ReportCsvRow[] }
  /** More data rows than `maxRows` (SPEC §3.4: 413 `too_many_rows`); parsing stopped there. */
  | { ok: false; code: 'too_many_rows'; limit: number }
  /** The bytes are not UTF-8 text. */
  | { ok: false; code: 'invalid_encoding'; error: string };

export interface ReportCsvOptions {
  /** Maximum data rows (SPEC §3.4: 10,000). */
  maxRows?: number;
}

export const REPORT_CSV_MAX_ROWS = 10_000;

export function isReportCsvRowError(row: ReportCsvRow): row is ReportCsvRowError {
  return 'error' in row;
}

interface RawRecord {
  fields: string[];
  /** Set when the record is structurally broken; the message explains why. */
  broken: string | null;
}

const QUOTE = 34;
const BACKSLASH = 92;
const CR = 13;
const LF = 10;

/** Reads the first line outside quotes and picks `;` when it outnumbers `,` there. */
function detectDelimiter(text: string): ',' | ';' {
  let commas = 0;
  let semicolons = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) quoted = !quoted;
    else if (!quoted && (code === LF || code === CR)) break;
    else if (!quoted && code === 44) commas++;
    else if (!quoted && code === 59) semicolons++;
  }
  return semicolons > commas ? ';' : ',';
}

/**
 * Splits CSV text into records. RFC 4180 quoting (delimiters, CR/LF and `""` inside quotes), plus
 * backslash-escaped quotes inside quoted fields, read the way CommandLineToArgvW reads them so that a
 * field can still end in a backslash: a run of n backslashes before `"` yields floor(n/2) backslashes,
 * and the quote is literal when n is odd; backslashes not followed by `"` are literal. Unquoted
 * fields are taken verbatim. Blank lines are skipped.
 */
function* records(text: string, delimiter: string): Generator<RawRecord> {
  const delimiterCode = delimiter.charCodeAt(0);
  const length = text.length;
  let i = 0;
  while (i < length) {
    const fields: string[] = [];
    let broken: string | null = null;
    let lineDone = false;
    while (!lineDone) {
      // Leading spaces before an opening quote are tolerated (`a, "b"`).
      let probe = i;
      while (probe < length && (text.charCodeAt(probe) === 32 || text.charCodeAt(probe) === 9)) probe++;
      if (probe < length && text.charCodeAt(probe) === QUOTE) {
        i = probe + 1;
        let value = '';
        let closed = false;
        let chunkStart = i;
        while (i < length) {
          const code = text.charCodeAt(i);
          if (code === BACKSLASH) {
            let run = i;
            while (run < length && text.charCodeAt(run) === BACKSLASH) run++;
            if (run < length && text.charCodeAt(run) === QUOTE) {
              const count = run - i;
              value += text.slice(chunkStart, i) + '\\'.repeat(count >> 1);
              if (count % 2 === 1) {
                value += '"';
                i = run + 1;
              } else {
                i = run; // the quote is a real quote: handled by the next iteration
              }
              chunkStart = i;
            } else {
              i = run;
            }
            continue;
          }
          if (code === QUOTE) {
            if (text.charCodeAt(i + 1) === QUOTE) {
              value += `${text.slice(chunkStart, i)}"`;
              i += 2;
              chunkStart = i;
              continue;
            }
            value += text.slice(chunkStart, i);
            i++;
            closed = true;
            break;
          }
          i++;
        }
        if (!closed) {
          value += text.slice(chunkStart, i);
          broken ??= 'Unterminated quoted field at end of input';
        }
        // After the closing quote: optional spaces, then a delimiter or a line end.
        while (i < length && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
        if (i < length) {
          const code = text.charCodeAt(i);
          if (code !== delimiterCode && code !== LF && code !== CR) {
            broken ??= 'Unexpected text after a closing quote';
            const start = i;
            while (i < length) {
              const next = text.charCodeAt(i);
              if (next === delimiterCode || next === LF || next === CR) break;
              i++;
            }
            value += text.slice(start, i);
          }
        }
        fields.push(value);
      } else {
        const start = i;
        while (i < length) {
          const code = text.charCodeAt(i);
          if (code === delimiterCode || code === LF || code === CR) break;
          i++;
        }
        fields.push(text.slice(start, i));
      }
      if (i >= length) {
        lineDone = true;
      } else {
        const code = text.charCodeAt(i);
        if (code === delimiterCode) {
          i++;
          if (i >= length) {
            fields.push('');
            lineDone = true;
          }
        } else {
          // CRLF, LF, or a lone CR end the record.
          i += code === CR && text.charCodeAt(i + 1) === LF ? 2 : 1;
          lineDone = true;
        }
      }
    }
    if (fields.length === 1 && (fields[0] ?? '').trim() === '' && broken === null) continue;
    yield { fields, broken };
  }
}

function splitList(field: string): string[] {
  return field
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

function optional(value: string | undefined, trim: boolean): string | undefined {
  if (value === undefined) return undefined;
  const result = trim ? value.trim() : value;
  return result === '' ? undefined : result;
}

/** Header names that mark the AbuseIPDB export layout (IP,Categories,ReportDate,Comment). */
function isAbuseIpdbHeader(fields: readonly string[]): boolean {
  const names = fields.map((field) => field.trim().toLowerCase());
  return names[1] === 'categories' || names[2] === 'reportdate';
}

function decode(input: string | Uint8Array): string | null {
  if (typeof input === 'string') return input;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(input);
  } catch {
    return null;
  }
}

/**
 * Parses a bulk-report CSV body (SPEC §3.4; case 005). Layout and delimiter come from the first record:
 * a header whose second column is `Categories` (or third `ReportDate`) selects the AbuseIPDB layout,
 * anything else is positional `IP,Category,Protocol,Comment`; a first record whose first field is not
 * an IP is a header and is skipped. The comment is the last column, so extra unquoted delimiters in it
 * are joined back. Rows keep raw strings; only AbuseIPDB category ids are mapped here.
 */
export function parseReportCsv(input: string | Uint8Array, options: ReportCsvOptions = {}): ReportCsvResult {
  const maxRows = options.maxRows ?? REPORT_CSV_MAX_ROWS;
  const decoded = decode(input);
  if (decoded === null) return { ok: false, code: 'invalid_encoding', error: 'The CSV is not valid UTF-8' };
  const text = decoded.charCodeAt(0) === 0xfeff ? decoded.slice(1) : decoded;
  const delimiter = detectDelimiter(text);
  const rows: ReportCsvRow[] = [];
  let layout: ReportCsvLayout = 'positional';
  let hasHeader = false;
  let first = true;
  let rowNumber = 0;
  for (const record of records(text, delimiter)) {
    if (first) {
      first = false;
      const firstField = (record.fields[0] ?? '').trim();
      if (!parseIp(firstField).ok && record.broken === null) {
        hasHeader = true;
        if (isAbuseIpdbHeader(record.fields)) layout = 'abuseipdb';
        continue;
      }
    }
    rowNumber++;
    if (rowNumber > maxRows) return { ok: false, code: 'too_many_rows', limit: maxRows };
    rows.push(toRow(record, rowNumber, layout, delimiter));
  }
  return { ok: true, layout, delimiter, hasHeader, rows };
}

function toRow(record: RawRecord, row: number, layout: ReportCsvLayout, delimiter: string): ReportCsvRow {
  const { fields } = record;
  const ip = (fields[0] ?? '').trim();
  if (record.broken !== null) return { row, ip, error: record.broken, code: 'invalid_parameter' };
  const comment = fields.length > 3 ? optional(fields.slice(3).join(delimiter), false) : undefined;
  if (layout === 'positional') {
    const protocol = optional(fields[2], true);
    return {
      row,
      ip,
      categories: splitList(fields[1] ?? ''),
      ...(protocol === undefined ? {} : { protocol }),
      ...(comment === undefined ? {} : { comment }),
    };
  }
  const categories: string[] = [];
  for (const id of splitList(fields[1] ?? '')) {
    const category = /^[0-9]{1,2}$/.test(id) ? fromAbuseIpdbCategory(Number(id)) : null;
    if (category === null) {
      return {
        row,
        ip,
        error: `Unknown AbuseIPDB category id "${id.slice(0, 20)}"`,
        code: 'invalid_parameter',
      };
    }
    if (!categories.includes(category)) categories.push(category);
  }
  if (categories.length === 0) {
    return { row, ip, error: 'Missing AbuseIPDB category ids (1-23)', code: 'invalid_parameter' };
  }
  const timestamp = optional(fields[2], true);
  return {
    row,
    ip,
    categories,
    ...(timestamp === undefined ? {} : { timestamp }),
    ...(comment === undefined ? {} : { comment }),
  };
}
