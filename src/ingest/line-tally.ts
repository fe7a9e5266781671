// Per-file bookkeeping shared by the line parsers: how many lines were used, ignored, skipped or rejected, and why.

/** Line numbers kept per reason; counts stay exact beyond this. */
export const MAX_LINES_PER_REASON = 1000;

export interface ReasonCount {
  count: number;
  /** 1-based line numbers, the first MAX_LINES_PER_REASON of them. */
  lines: number[];
}

export interface LineTally {
  /** Lines read, blank ones included. */
  lines: number;
  /** Lines that produced a record. */
  accepted: number;
  /** Blank lines, comments and lines of no interest (e.g. non-sshd syslog lines). */
  ignored: number;
  /** Well-formed lines deliberately not turned into records, by reason. */
  skipped: Record<string, ReasonCount>;
  /** Lines that looked relevant but could not be used, by reason. */
  rejected: Record<string, ReasonCount>;
}

export function emptyTally(): LineTally {
  return { lines: 0, accepted: 0, ignored: 0, skipped: {}, rejected: {} };
}

function bump(map: Record<string, ReasonCount>, reason: string, line: number): void {
  let entry = map[reason];
  if (entry === undefined) {
    entry = { count: 0, lines: [] };
    map[reason] = entry;
  }
  entry.count++;
  if (entry.lines.length < MAX_LINES_PER_REASON) entry.lines.push(line);
}

export function tallyRejected(tally: LineTally, reason: string, line: number): void {
  bump(tally.rejected, reason, line);
}

export function tallySkipped(tally: LineTally, reason: string, line: number): void {
  bump(tally.skipped, reason, line);
}

/** Sum of every rejected line. */
export function rejectedCount(tally: LineTally): number {
  return Object.values(tally.rejected).reduce((sum, entry) => sum + entry.count, 0);
}

/** Sum of every skipped line. */
export function skippedCount(tally: LineTally): number {
  return Object.values(tally.skipped).reduce((sum, entry) => sum + entry.count, 0);
}

/** Lines as they come: a sync or async iterable of strings (a readline interface works). */
export type LineSource = Iterable<string> | AsyncIterable<string>;
