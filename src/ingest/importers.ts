// `vakt import <kind> <file…>` (SPEC §7): Cowrie JSON → events; auth logs, Fail2Ban logs and report CSV → local reports.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import type { SensorEvent } from '../core/events.js';
import { isReportCsvRowError, parseReportCsv } from '../core/report-csv.js';
import type { AuthenticatedKey } from '../services/key-service.js';
import { type ValidReport, validateEvidenceIp, validateReport } from '../services/report-input.js';
import type { Services } from '../services/services.js';
import { createAuthLogParser, detectBursts, type FailedLogin } from './auth-log-parser.js';
import type { CowrieWorkerInput, CowrieWorkerMessage } from './cowrie-worker.js';
import { categoryForJail, createFail2banParser } from './fail2ban-log-parser.js';
import {
  emptyTally,
  type LineTally,
  rejectedCount,
  skippedCount,
  tallyRejected,
  tallySkipped,
} from './line-tally.js';
import { readLines } from './read-lines.js';

export { readLines } from './read-lines.js';

export const IMPORT_KINDS = ['cowrie', 'auth-log', 'fail2ban-log', 'reports-csv'] as const;
export type ImportKind = (typeof IMPORT_KINDS)[number];

/** The reporter key imported reports are attributed to (created on first use, tier unlimited). */
export const LOCAL_REPORTER_NAME = 'local-importer';

export interface ImportOptions {
  /** Server clock, epoch ms: the "more than 5 minutes in the future" check and receive times. */
  readonly now: number;
  /** Called now and then with lines read so far (the CLI draws progress on a TTY). */
  readonly onProgress?: (linesRead: number) => void;
  /** auth-log: the year of the first line (syslog stamps have none). Default: the current UTC year. */
  readonly year?: number;
  /** auth-log and fail2ban-log: local-time offset of the log from UTC, minutes. Default 0. */
  readonly utcOffsetMinutes?: number;
  /** auth-log: failures within `burstWindowMs` that make a brute-force report. Default 5 in 10 minutes. */
  readonly burstThreshold?: number;
  readonly burstWindowMs?: number;
}

export interface ImportSummary {
  kind: ImportKind;
  files: number;
  /** Lines (or CSV rows) read. */
  read: number;
  /** Records the lines gave: Cowrie events, failed logins, Fail2Ban bans, CSV reports. */
  records: number;
  /** Events or reports stored for the first time. */
  accepted: number;
  /** Events or reports already stored by an earlier import (nothing changed). */
  duplicates: number;
  /** Lines that could not be used, and why. */
  rejected: number;
  rejectedReasons: Record<string, number>;
  /** Well-formed lines deliberately not used (e.g. Cowrie client metadata, Fail2Ban unbans), and why. */
  skipped: number;
  skippedReasons: Record<string, number>;
  /** Blank lines and lines of no interest. */
  ignored: number;
}

/** Sessions are kept whole per transaction; a chunk closes at about this many events. */
const EVENTS_PER_CHUNK = 10_000;
const REPORTS_PER_CHUNK = 500;
const PROGRESS_EVERY = 5_000;

function readText(path: string): string {
  const bytes = readFileSync(path);
  return (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes).toString('utf8');
}

function counts(map: LineTally['rejected']): Record<string, number> {
  return Object.fromEntries(Object.entries(map).map(([reason, entry]) => [reason, entry.count]));
}

function summaryFrom(kind: ImportKind, files: number, tally: LineTally): ImportSummary {
  return {
    kind,
    files,
    read: tally.lines,
    records: tally.accepted,
    accepted: 0,
    duplicates: 0,
    rejected: rejectedCount(tally),
    rejectedReasons: counts(tally.rejected),
    skipped: skippedCount(tally),
    skippedReasons: counts(tally.skipped),
    ignored: tally.ignored,
  };
}

async function* tracked(
  lines: AsyncIterable<string>,
  options: ImportOptions,
  offset: { read: number },
): AsyncGenerator<string> {
  for await (const line of lines) {
    offset.read++;
    if (options.onProgress && offset.read % PROGRESS_EVERY === 0) options.onProgress(offset.read);
    yield line;
  }
}

/**
 * Parses Cowrie files in a worker thread (see cowrie-worker.ts) and yields its event batches; the
 * returned value is the parser's tally. The worker is stopped if the consumer stops early.
 */
async function* cowrieBatches(
  files: readonly string[],
  options: ImportOptions,
): AsyncGenerator<SensorEvent[], LineTally> {
  const input: CowrieWorkerInput = { files: [...files], now: options.now };
  // From dist the worker is the compiled .js. Run from the sources (tests and benches under tsx), it is
  // the .ts file, and Node 20 does not carry tsx's loader hooks into workers: register them there first.
  const worker = import.meta.url.endsWith('.ts')
    ? new Worker(
        `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./cowrie-worker.ts', import.meta.url).href)}); });`,
        { eval: true, workerData: input },
      )
    : new Worker(new URL('./cowrie-worker.js', import.meta.url), { workerData: input });
  const queue: CowrieWorkerMessage[] = [];
  let failure: Error | null = null;
  let exited = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };
  worker.on('message', (message: CowrieWorkerMessage) => {
    queue.push(message);
    notify();
  });
  worker.on('error', (error) => {
    failure = error;
    notify();
  });
  worker.on('exit', () => {
    exited = true;
    notify();
  });
  let reported = 0;
  try {
    for (;;) {
      const message = queue.shift();
      if (message === undefined) {
        if (failure) throw failure;
        if (exited) throw new Error('the Cowrie parser worker stopped before it finished');
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      if (message.kind === 'error') throw new Error(message.message);
      if (options.onProgress && message.read - reported >= PROGRESS_EVERY) {
        reported = message.read;
        options.onProgress(message.read);
      }
      if (message.kind === 'done') return message.tally;
      worker.postMessage('ack');
      yield message.events;
    }
  } finally {
    await worker.terminate();
  }
}

/** Cowrie JSON logs (plain or gzip) → sensor events; original timestamps kept, however old. */
export async function importCowrie(
  services: Services,
  files: readonly string[],
  options: ImportOptions,
): Promise<ImportSummary> {
  const open = new Map<string, SensorEvent[]>();
  let buffered = 0;
  let accepted = 0;
  let duplicates = 0;
  const flush = async (all: boolean) => {
    const batch: SensorEvent[] = [];
    for (const [key, events] of open) {
      // Closed sessions go first; open ones wait for their remaining lines unless the buffer is full.
      if (!all && events[events.length - 1]?.type !== 'disconnect') continue;
      batch.push(...events);
      open.delete(key);
    }
    buffered -= batch.length;
    // Stored and aggregated together while the worker parses ahead (decision 0631): the new sessions'
    // events come from memory, and nothing stays pending past the chunk.
    const outcome = await services.evidence.ingestAndAggregate(batch, options.now);
    accepted += outcome.accepted;
    duplicates += outcome.duplicates;
  };
  const batches = cowrieBatches(files, options);
  let tally: LineTally;
  try {
    for (;;) {
      const next = await batches.next();
      if (next.done) {
        tally = next.value;
        break;
      }
      for (const event of next.value) {
        const key = `${event.sensor}\u0000${event.session}`;
        const list = open.get(key);
        if (list) list.push(event);
        else open.set(key, [event]);
        buffered++;
      }
      if (buffered >= EVENTS_PER_CHUNK) await flush(buffered >= 2 * EVENTS_PER_CHUNK);
    }
  } finally {
    // Stops the worker when the store failed (a finished generator ignores this).
    await batches.return(emptyTally());
  }
  await flush(true);
  // Aggregation runs after the store (decision 0630): the summary waits for the final scores.
  await services.evidence.drain();
  options.onProgress?.(tally.lines);
  return { ...summaryFrom('cowrie', files.length, tally), accepted, duplicates };
}

interface ReportCandidate {
  report: ValidReport;
  /** Stable across imports of the same line, so a re-import changes nothing. */
  id: string;
}

function stableId(...parts: (string | number | null | undefined)[]): string {
  return createHash('sha256')
    .update(parts.map((p) => String(p ?? '')).join('\u0000'))
    .digest('hex')
    .slice(0, 40);
}

/** Stores reports from the local reporter in chunks; ids already imported are skipped. */
async function storeReports(
  services: Services,
  kind: ImportKind,
  candidates: readonly ReportCandidate[],
  now: number,
): Promise<{ accepted: number; duplicates: number }> {
  const key: AuthenticatedKey = await services.keys.localReporter(LOCAL_REPORTER_NAME);
  const source = `import:${kind}`;
  let accepted = 0;
  let duplicates = 0;
  for (let i = 0; i < candidates.length; i += REPORTS_PER_CHUNK) {
    const part = candidates.slice(i, i + REPORTS_PER_CHUNK);
    await services.store.transaction(async (tx) => {
      const touched = new Set<string>();
      for (const candidate of part) {
        const ip = candidate.report.ip.text;
        const inserted = await tx
          .insertInto('evidence_ids')
          .values({ source, id: candidate.id, ip })
          .onConflict((oc) => oc.columns(['source', 'id']).doNothing())
          .returning('id')
          .executeTakeFirst();
        if (!inserted) {
          duplicates++;
          continue;
        }
        await services.reports.apply(tx, key, candidate.report, now);
        touched.add(ip);
        accepted++;
      }
      for (const ip of [...touched].sort()) await services.scorer.rescore(tx, ip, now);
    });
  }
  return { accepted, duplicates };
}

/** Checks an importer's address like a report's (public, not allowlisted); records the reason otherwise. */
function evidenceIp(services: Services, text: string, tally: LineTally, line: number) {
  const checked = validateEvidenceIp(text, services.config.allowlist);
  if (checked.ok) return checked.ip;
  tallyRejected(tally, checked.code, line);
  return null;
}

/** Failed logins from one address within `windowMs` that make one `auth-log` report (`--threshold`, `--window`). */
export const AUTH_BURST_DEFAULTS = { threshold: 5, windowMs: 10 * 60_000 } as const;

/** sshd/PAM auth logs → one `brute_force`/`ssh` report per burst of failed logins (SPEC §7). */
export async function importAuthLog(
  services: Services,
  files: readonly string[],
  options: ImportOptions,
): Promise<ImportSummary> {
  const tally = emptyTally();
  const failures: FailedLogin[] = [];
  const progress = { read: 0 };
  let fileIndex = 0;
  for (const file of files) {
    const parser = createAuthLogParser({
      year: options.year ?? new Date(options.now).getUTCFullYear(),
      utcOffsetMinutes: options.utcOffsetMinutes ?? 0,
    });
    for await (const line of tracked(readLines(file), options, progress)) {
      for (const failure of parser.push(line)) failures.push(failure);
    }
    mergeTally(tally, parser.tally);
    fileIndex++;
  }
  const bursts = detectBursts(failures, {
    threshold: options.burstThreshold ?? AUTH_BURST_DEFAULTS.threshold,
    windowMs: options.burstWindowMs ?? AUTH_BURST_DEFAULTS.windowMs,
  });
  const candidates: ReportCandidate[] = [];
  for (const burst of bursts) {
    const ip = evidenceIp(services, burst.ip, tally, 0);
    if (ip === null) continue;
    candidates.push({
      id: stableId(burst.ip, burst.firstTs, burst.failures),
      report: {
        ip,
        categories: ['brute_force'],
        protocol: 'ssh',
        comment: burst.comment,
        reportedAt: Math.min(burst.lastTs, options.now),
      },
    });
  }
  const stored = await storeReports(services, 'auth-log', candidates, options.now);
  options.onProgress?.(progress.read);
  return { ...summaryFrom('auth-log', fileIndex, tally), ...stored };
}

/** Fail2Ban logs → one report per `Ban` line, category and protocol by jail (SPEC §7, §8). */
export async function importFail2banLog(
  services: Services,
  files: readonly string[],
  options: ImportOptions,
): Promise<ImportSummary> {
  const tally = emptyTally();
  const candidates: ReportCandidate[] = [];
  const progress = { read: 0 };
  for (const file of files) {
    const parser = createFail2banParser({ utcOffsetMinutes: options.utcOffsetMinutes ?? 0 });
    for await (const line of tracked(readLines(file), options, progress)) {
      const entry = parser.push(line);
      if (entry === null) continue;
      if (entry.action === 'unban') continue; // the parser already tallied it as skipped
      if (entry.action === 'restore_ban') {
        // A restart re-applying an earlier ban: its Ban line was (or will be) imported already.
        parser.tally.accepted--;
        tallySkipped(parser.tally, 'restore_ban', entry.line);
        continue;
      }
      const ip = evidenceIp(services, entry.ip, parser.tally, entry.line);
      if (ip === null) {
        parser.tally.accepted--;
        continue;
      }
      const { category, protocol } = categoryForJail(entry.jail);
      candidates.push({
        id: stableId(entry.jail, entry.ip, entry.ts),
        report: {
          ip,
          categories: [category],
          protocol,
          comment: `fail2ban jail ${entry.jail}`,
          reportedAt: Math.min(entry.ts, options.now),
        },
      });
    }
    mergeTally(tally, parser.tally);
  }
  const stored = await storeReports(services, 'fail2ban-log', candidates, options.now);
  options.onProgress?.(progress.read);
  return { ...summaryFrom('fail2ban-log', files.length, tally), ...stored };
}

/** Report CSV in either SPEC §3.4 layout; no row limit for local files. */
export async function importReportsCsv(
  services: Services,
  files: readonly string[],
  options: ImportOptions,
): Promise<ImportSummary> {
  const tally = emptyTally();
  const candidates: ReportCandidate[] = [];
  for (const file of files) {
    const parsed = parseReportCsv(readText(file), { maxRows: Number.MAX_SAFE_INTEGER });
    if (!parsed.ok) {
      tallyRejected(tally, parsed.code === 'invalid_encoding' ? 'invalid_encoding' : 'too_many_rows', 0);
      tally.lines++;
      continue;
    }
    for (const row of parsed.rows) {
      tally.lines++;
      if (isReportCsvRowError(row)) {
        tallyRejected(tally, row.code, row.row);
        continue;
      }
      const result = validateReport(
        {
          ip: row.ip,
          categories: row.categories.join(','),
          protocol: row.protocol,
          comment: row.comment,
          timestamp: row.timestamp,
        },
        options.now,
        services.config.allowlist,
      );
      if (!result.ok) {
        tallyRejected(tally, result.code, row.row);
        continue;
      }
      tally.accepted++;
      candidates.push({
        id: stableId(row.ip, row.categories.join(','), row.protocol, row.comment, row.timestamp),
        report: result.report,
      });
    }
    options.onProgress?.(tally.lines);
  }
  const stored = await storeReports(services, 'reports-csv', candidates, options.now);
  return { ...summaryFrom('reports-csv', files.length, tally), ...stored };
}

function mergeTally(into: LineTally, from: LineTally): void {
  into.lines += from.lines;
  into.accepted += from.accepted;
  into.ignored += from.ignored;
  for (const key of ['skipped', 'rejected'] as const) {
    for (const [reason, entry] of Object.entries(from[key])) {
      const target = into[key][reason];
      if (target) target.count += entry.count;
      else into[key][reason] = { count: entry.count, lines: [] };
    }
  }
}

/** Runs the importer for `kind` over `files`. */
export function runImport(
  services: Services,
  kind: ImportKind,
  files: readonly string[],
  options: ImportOptions,
): Promise<ImportSummary> {
  switch (kind) {
    case 'cowrie':
      return importCowrie(services, files, options);
    case 'auth-log':
      return importAuthLog(services, files, options);
    case 'fail2ban-log':
      return importFail2banLog(services, files, options);
    case 'reports-csv':
      return importReportsCsv(services, files, options);
  }
}
