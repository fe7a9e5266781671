// `vakt import <kind> …`: one switch on the kind; each importer lives in src/ingest (SPEC §7).
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';
import { FeedImportError, type FeedImportSummary, importFeed } from '../ingest/feed-import.js';
import { printJson, printLine, UsageError } from './output.js';
import { openRuntime } from './runtime.js';

const HELP = `vakt import feed --name NAME --trust W [--kind list|tor] [--json] FILE…
  Imports plain blocklists (IPs, CIDRs, "IP<TAB>count", comments; .gz accepted) as the current listing
  of feed NAME with trust W (0-1). Re-importing the same files changes nothing.`;

function printSummary(summary: FeedImportSummary): void {
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
    else printSummary(summary);
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
      throw new UsageError(`unknown import kind "${kind ?? ''}"\n\n${HELP}`);
  }
}
