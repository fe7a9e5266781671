// `vakt keys create|list|disable|rotate` — operator key management on the server's database (SPEC §2.1, §10).
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';
import { COUNTERS, type Counter, isCounter, isTierId, TIER_IDS } from '../core/tiers.js';
import { parseInputTimestamp, toIso } from '../core/time.js';
import { printJson, printLine, printTable, UsageError } from './output.js';
import { openRuntime } from './runtime.js';

export const KEYS_USAGE = `usage:
  vakt keys create --tier <${TIER_IDS.join('|')}> [--name N] [--quota lookups=5,reports=10,…] [--expires <ISO date>] [--trust 0-1] [--json]
  vakt keys list [--json]
  vakt keys disable <id>
  vakt keys rotate <id> [--json]`;

function parseQuotas(text: string): Partial<Record<Counter, number>> {
  const out: Partial<Record<Counter, number>> = {};
  for (const item of text.split(',').filter(Boolean)) {
    const [name, value] = item.split('=').map((s) => s.trim());
    if (!name || !isCounter(name) || !value || !/^[0-9]+$/.test(value)) {
      throw new UsageError(
        `--quota: "${item}" should be <counter>=<number>, counters: ${COUNTERS.join(', ')}`,
      );
    }
    out[name] = Number(value);
  }
  return out;
}

export async function keysCommand(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      tier: { type: 'string' },
      name: { type: 'string' },
      quota: { type: 'string' },
      expires: { type: 'string' },
      trust: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!action || !['create', 'list', 'disable', 'rotate'].includes(action)) throw new UsageError(KEYS_USAGE);
  const config = loadConfig();

  let create: Parameters<Awaited<ReturnType<typeof openRuntime>>['services']['keys']['create']>[0] | null =
    null;
  if (action === 'create') {
    if (!values.tier) throw new UsageError(`--tier is required: one of ${TIER_IDS.join(', ')}`);
    if (!isTierId(values.tier)) {
      throw new UsageError(`--tier: unknown tier "${values.tier}"; use one of ${TIER_IDS.join(', ')}`);
    }
    let expiresAt: number | null = null;
    if (values.expires) {
      const parsed = parseInputTimestamp(
        values.expires.length === 10 ? `${values.expires}T00:00:00Z` : values.expires,
        Number.MAX_SAFE_INTEGER,
      );
      if (!parsed.ok) throw new UsageError(`--expires: ${parsed.reason}`);
      expiresAt = parsed.epochMs;
    }
    let trust: number | null = null;
    if (values.trust !== undefined) {
      trust = Number(values.trust);
      if (!Number.isFinite(trust) || trust < 0 || trust > 1)
        throw new UsageError('--trust must be a number from 0 to 1');
    }
    create = {
      tier: values.tier,
      name: values.name ?? null,
      quotaOverrides: values.quota ? parseQuotas(values.quota) : {},
      expiresAt,
      trust,
    };
  } else if ((action === 'disable' || action === 'rotate') && positionals.length !== 1) {
    throw new UsageError(KEYS_USAGE);
  }

  const runtime = await openRuntime(config);
  try {
    const keys = runtime.services.keys;
    if (create) {
      const created = await keys.create(create);
      if (values.json) printJson(created);
      else {
        printLine(`Created ${created.tier} key ${created.id}. The secret is shown only this once:`);
        printLine(created.key);
      }
      return 0;
    }
    if (action === 'list') {
      const list = await keys.list();
      if (values.json) printJson(list);
      else {
        printTable([
          ['ID', 'TIER', 'NAME', 'PREFIX', 'CREATED', 'EXPIRES', 'STATUS'],
          ...list.map((k) => [
            k.id,
            k.tier,
            k.name ?? '',
            k.prefix,
            toIso(k.createdAt),
            k.expiresAt === null ? '' : toIso(k.expiresAt),
            k.disabled ? 'disabled' : 'active',
          ]),
        ]);
      }
      return 0;
    }
    const id = positionals[0] ?? '';
    if (action === 'disable') {
      if (!(await keys.disable(id))) throw new UsageError(`no key with id ${id}`);
      printLine(`Disabled ${id}.`);
      return 0;
    }
    const rotated = await keys.rotate(id);
    if (!rotated) throw new UsageError(`no key with id ${id}`);
    if (values.json) printJson(rotated);
    else {
      printLine(`Rotated ${id}; the old secret no longer works. The new secret is shown only this once:`);
      printLine(rotated.key);
    }
    return 0;
  } finally {
    await runtime.close();
  }
}
