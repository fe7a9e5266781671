// `vakt whitelist list|refresh`: shows the known-benign sources and replaces one source's list (SPEC §1 whitelist).
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';
import { benignTable, ListBenignSources, saveBenignList } from '../services/benign-sources.js';
import { printLine, printTable, UsageError } from './output.js';
import { openRuntime } from './runtime.js';

export const WHITELIST_HELP = `usage: vakt whitelist list
       vakt whitelist refresh --source NAME (--file F | --url U)
  Replaces the list of a known-benign source (one IP or CIDR per line). Running servers apply it at
  their next start.`;

async function fetchList(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (!response.ok) throw new UsageError(`${url} answered ${response.status}`);
  return response.text();
}

export async function whitelistCommand(args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: { source: { type: 'string' }, file: { type: 'string' }, url: { type: 'string' } },
  });
  if (verb === 'list') {
    const runtime = await openRuntime(loadConfig(), { withoutQuota: true });
    try {
      const benign = runtime.services.benign;
      const rows = benign instanceof ListBenignSources ? benign.describe() : [];
      printTable([
        ['SOURCE', 'KIND', 'FACTOR', 'ENTRIES'],
        ...rows.map((r) => [r.name, r.kind, String(r.factor), String(r.entries)]),
      ]);
      return 0;
    } finally {
      await runtime.close();
    }
  }
  if (verb !== 'refresh') throw new UsageError(WHITELIST_HELP);
  if (!values.source || (values.file === undefined) === (values.url === undefined))
    throw new UsageError(WHITELIST_HELP);
  const text =
    values.file !== undefined ? await readFile(values.file, 'utf8') : await fetchList(values.url ?? '');
  const lines = text.split(/\r?\n/);
  const { entries } = benignTable(lines);
  if (entries === 0) throw new UsageError('the list holds no address or CIDR; nothing replaced');
  const runtime = await openRuntime(loadConfig(), { withoutQuota: true });
  try {
    const benign = runtime.services.benign;
    if (!(benign instanceof ListBenignSources) || !benign.has(values.source)) {
      throw new UsageError(`unknown source "${values.source}" (see "vakt whitelist list")`);
    }
    await saveBenignList(runtime.services.store.db, values.source, lines, runtime.services.clock.now());
    printLine(`${values.source}: ${entries} entries stored`);
    return 0;
  } finally {
    await runtime.close();
  }
}
