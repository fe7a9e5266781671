// `vakt import <kind> <file…>` — imports logs as evidence and blocklists as feeds (SPEC §7, §10).
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';
import { FeedImportError, type FeedImportSummary, importFeed } from '../ingest/feed-import.js';
import {
  AUTH_BURST_DEFAULTS,
  IMPORT_KINDS,
  type ImportKind,
  type ImportSummary,
  runImport,
} from '../ingest/importers.js';
import { printJson, printLine, UsageError } from './output.js';
import { openRuntime } from './runtime.js';

const USAGE = `usage: vakt import <${IMPORT_KINDS.join('|')}> <file…> [--json]
       vakt import feed --name NAME --trust W [--kind list|tor] [--json] <file…>
  [--year YYYY]           auth-log: year of the first line (syslog has none; default this year)
  [--utc-offset MINUTES]  auth-log, fail2ban-log: the log's local-time offset from UTC (default 0)
  [--threshold N]         auth-log: failed logins in the window that make a report (default 5)
  [--window MINUTES]      auth-log: burst window (default 10)
Gzip files are read as such. Importing the same file again changes nothing.`;

function integer(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${name} must be an integer ${min}–${max}\n\n${USAGE}`);
  }
  return Number(value);
}

function printSummary(summary: ImportSummary, burst: { threshold: number; windowMs: number }) {
  printLine(
    `${summary.kind}: ${summary.files} file(s), ${summary.read} read, ${summary.records} records, ${summary.accepted} accepted, ` +
      `${summary.duplicates} already imported, ${summary.rejected} rejected, ${summary.skipped} skipped, ` +
      `${summary.ignored} ignored`,
  );
  if (summary.kind === 'auth-log') {
    // Records are failed logins, accepted rows are reports: say how one becomes the other.
    printLine(
      `  the ${summary.records} failed logins made ${summary.accepted + summary.duplicates} report(s): one per burst of ` +
        `≥ ${burst.threshold} from an address within ${burst.windowMs / 60_000} minutes; failures outside a burst make none`,
    );
  }
  for (const [title, reasons] of [
    ['rejected', summary.rejectedReasons],
    ['skipped', summary.skippedReasons],
  ] as const) {
    for (const [reason, count] of Object.entries(reasons).sort((a, b) => b[1] - a[1])) {
      printLine(`  ${title}: ${reason}: ${count}`);
    }
  }
}

async function importLogsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: 'boolean' },
      year: { type: 'string' },
      'utc-offset': { type: 'string' },
      threshold: { type: 'string' },
      window: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    printLine(USAGE);
    return 0;
  }
  const [kind, ...files] = positionals;
  if (!kind || !(IMPORT_KINDS as readonly string[]).includes(kind) || files.length === 0) {
    throw new UsageError(USAGE);
  }
  const year = integer('year', values.year, 1970, 9999);
  const offset = integer('utc-offset', values['utc-offset'], -24 * 60, 24 * 60);
  const threshold = integer('threshold', values.threshold, 1, 1_000_000);
  const window = integer('window', values.window, 1, 7 * 24 * 60);
  const config = loadConfig();
  const runtime = await openRuntime(config);
  const tty = process.stderr.isTTY === true && !values.json;
  const started = Date.now();
  try {
    // Rows the import creates store country and ASN (blacklist filters read them), as the server's do.
    await runtime.services.geo.load();
    const summary = await runImport(runtime.services, kind as ImportKind, files, {
      now: runtime.services.clock.now(),
      ...(year === undefined ? {} : { year }),
      ...(offset === undefined ? {} : { utcOffsetMinutes: offset }),
      ...(threshold === undefined ? {} : { burstThreshold: threshold }),
      ...(window === undefined ? {} : { burstWindowMs: window * 60_000 }),
      ...(tty
        ? {
            onProgress: (read: number) => {
              const seconds = (Date.now() - started) / 1000;
              process.stderr.write(`\r${read} lines read (${Math.round(read / Math.max(seconds, 0.001))}/s)`);
            },
          }
        : {}),
    });
    if (tty) process.stderr.write('\n');
    if (values.json) printJson(summary);
    else {
      printSummary(summary, {
        threshold: threshold ?? AUTH_BURST_DEFAULTS.threshold,
        windowMs: window === undefined ? AUTH_BURST_DEFAULTS.windowMs : window * 60_000,
      });
    }
    return 0;
  } finally {
    await runtime.close();
  }
}

const HELP = `vakt import feed --name NAME --trust W [--kind list|tor] [--json] FILE…
  Imports plain blocklists (IPs, CIDRs, "IP<TAB>count", comments; .gz accepted) as the current listing
  of feed NAME with trust W (0-1). Re-importing the same files changes nothing.`;

function printFeedSummary(summary: FeedImportSummary): void {
  const r = summary.rejected;
  printLine(`feed ${summary.feed}: ${summary.files} file(s)`);
  printLine(
    `  read ${summary.read}, accepted ${summary.accepted}, ignored ${summary.ignored} (blank/comment)`,
  );
  printLine(
    `  rejected ${r.malformed + r.non_public + r.unsupported + r.allowlisted}: malformed ${r.malformed}, non_public ${r.non_public}, unsupported ${r.unsupported}, allowlisted ${r.allowlisted}`,
  );
  printLine(
    `  entries ${summary.entries}: added ${summary.added}, removed ${summary.removed}; rescored ${summary.rescored}`,
  );
}

async function importFeedCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      trust: { type: 'string' },
      kind: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    printLine(HELP);
    return 0;
  }
  if (!values.name) throw new UsageError(`--name is required\n\n${HELP}`);
  const kind = values.kind ?? 'list';
  if (kind !== 'list' && kind !== 'tor') throw new UsageError('--kind is "list" or "tor"');
  if (values.trust === undefined && kind === 'list') throw new UsageError(`--trust is required\n\n${HELP}`);
  const trust = values.trust === undefined ? 0 : Number(values.trust);
  const runtime = await openRuntime(loadConfig(), { withoutQuota: true });
  try {
    await runtime.services.geo.load();
    const summary = await importFeed(runtime.services, positionals, { name: values.name, trust, kind });
    if (values.json) printJson(summary);
    else printFeedSummary(summary);
    return 0;
  } catch (error) {
    if (error instanceof FeedImportError) throw new UsageError(error.message);
    throw error;
  } finally {
    await runtime.close();
  }
}

export async function importCommand(args: string[]): Promise<number> {
  const [kind, ...rest] = args;
  switch (kind) {
    case 'feed':
      return importFeedCommand(rest);
    default:
      return importLogsCommand(args);
  }
}
