// `vakt purge [--dry-run] [--json]` — runs the retention job now and reports what it removed (SPEC §6, §10).
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';
import { toIso } from '../core/time.js';
import { printJson, printLine } from './output.js';
import { openRuntime } from './runtime.js';

export async function purgeCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { 'dry-run': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
  });
  const config = loadConfig();
  const runtime = await openRuntime(config, { withoutQuota: true });
  try {
    const dryRun = values['dry-run'] === true;
    const result = await runtime.services.retention.run(runtime.services.clock.now(), dryRun);
    if (values.json) {
      printJson(result);
      return 0;
    }
    const verb = dryRun ? 'Would remove' : 'Removed';
    printLine(`Retention: ${config.retentionDays} days${dryRun ? ' (dry run: nothing deleted)' : ''}.`);
    for (const [table, rows] of Object.entries(result.telemetry)) {
      printLine(
        `${verb} ${rows} ${table} rows from before ${toIso(result.telemetryCutoffDay * 86_400_000)}.`,
      );
    }
    if (result.partitionsDropped > 0) {
      printLine(`${dryRun ? 'Would drop' : 'Dropped'} ${result.partitionsDropped} daily partitions.`);
    }
    printLine(
      `${verb} ${result.reputations} reputations last seen before ${toIso(result.reputationCutoff)}.`,
    );
    for (const [table, rows] of Object.entries(result.lookups)) {
      printLine(`${verb} ${rows} ${table} rows last seen before ${toIso(result.reputationCutoff)}.`);
    }
    return 0;
  } finally {
    await runtime.close();
  }
}
