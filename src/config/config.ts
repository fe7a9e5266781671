// One typed, frozen configuration parsed from VAKT_* environment variables and an optional JSON file (SPEC §12).
import { readFileSync } from 'node:fs';
import { type Cidr, parseCidr } from '../core/ip.js';
import {
  COUNTERS,
  type Counter,
  DEFAULT_TIERS,
  isCounter,
  isTierId,
  type Tier,
  type TierId,
} from '../core/tiers.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface Config {
  readonly databaseUrl: string;
  readonly databasePoolSize: number;
  readonly redisUrl: string | null;
  readonly host: string;
  readonly port: number;
  /** Base URL clients use to reach this instance, without a trailing slash. */
  readonly publicUrl: string;
  readonly trustedProxies: readonly Cidr[];
  readonly allowlist: readonly Cidr[];
  readonly retentionDays: number;
  readonly taxiiScoreMinimum: number;
  readonly logLevel: LogLevel;
  readonly tiers: Readonly<Record<TierId, Tier>>;
}

/** Every variable the product reads; any other VAKT_* variable is a start-up error. */
export const KNOWN_VARIABLES = [
  'VAKT_CONFIG_FILE',
  'VAKT_DATABASE_URL',
  'VAKT_DATABASE_POOL_SIZE',
  'VAKT_REDIS_URL',
  'VAKT_HOST',
  'VAKT_PORT',
  'VAKT_PUBLIC_URL',
  'VAKT_TRUSTED_PROXIES',
  'VAKT_ALLOWLIST',
  'VAKT_RETENTION_DAYS',
  'VAKT_TAXII_SCORE_MINIMUM',
  'VAKT_LOG_LEVEL',
  'VAKT_TIER_LIMITS',
  // Client-side CLI settings (SPEC §10), read by the client commands, not by the server.
  'VAKT_API_KEY',
  'VAKT_URL',
] as const;

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Source = Record<string, string | undefined>;

function readConfigFile(path: string, problems: string[]): Source {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    problems.push(`VAKT_CONFIG_FILE: cannot read ${path}: ${(error as Error).message}`);
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push('VAKT_CONFIG_FILE: the file must hold a JSON object of VAKT_* names to values');
    return {};
  }
  const out: Source = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      out[name] = String(value);
    } else {
      problems.push(`VAKT_CONFIG_FILE: ${name} must be a string or a number`);
    }
  }
  return out;
}

function parseInteger(name: string, raw: string, min: number, max: number, problems: string[]): number {
  if (!/^[0-9]+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) {
    problems.push(`${name}: expected a whole number from ${min} to ${max}, got "${raw}"`);
    return min;
  }
  return Number(raw);
}

function parseCidrList(name: string, raw: string, problems: string[]): Cidr[] {
  const out: Cidr[] = [];
  for (const item of raw.split(/[\s,]+/).filter(Boolean)) {
    const parsed = parseCidr(item);
    if (parsed.ok) out.push(parsed.cidr);
    else problems.push(`${name}: "${item}" is not an IP address or CIDR (${parsed.reason})`);
  }
  return out;
}

// "free.lookups=2000,tier_1.blacklist=60000"; "none" or "unlimited" removes a limit.
function parseTierLimits(raw: string, problems: string[]): Record<TierId, Tier> {
  const tiers = structuredClone(DEFAULT_TIERS) as Record<TierId, Tier>;
  for (const item of raw.split(',').filter((s) => s.trim() !== '')) {
    const match = /^\s*([a-z_0-9]+)\.([a-z]+)\s*=\s*([0-9]+|none|unlimited)\s*$/.exec(item);
    const tierId = match?.[1] ?? '';
    const counter = match?.[2] ?? '';
    if (!match || !isTierId(tierId) || !isCounter(counter)) {
      problems.push(
        `VAKT_TIER_LIMITS: "${item}" should look like free.lookups=2000 (counters: ${COUNTERS.join(', ')})`,
      );
      continue;
    }
    const value = match[3] === 'none' || match[3] === 'unlimited' ? null : Number(match[3]);
    const current = tiers[tierId];
    tiers[tierId] = { ...current, limits: { ...current.limits, [counter as Counter]: value } };
  }
  return tiers;
}

/**
 * Parses and validates the configuration. Throws ConfigError listing every problem at once,
 * including unknown VAKT_* variables (SPEC §12).
 */
export function loadConfig(env: Source = process.env): Config {
  const problems: string[] = [];
  const known = new Set<string>(KNOWN_VARIABLES);
  for (const name of Object.keys(env)) {
    if (name.startsWith('VAKT_') && !known.has(name)) {
      problems.push(`${name}: unknown variable (known: ${KNOWN_VARIABLES.join(', ')})`);
    }
  }
  const fileValues = env.VAKT_CONFIG_FILE ? readConfigFile(env.VAKT_CONFIG_FILE, problems) : {};
  for (const name of Object.keys(fileValues)) {
    if (!known.has(name) || name === 'VAKT_CONFIG_FILE')
      problems.push(`VAKT_CONFIG_FILE: unknown setting ${name}`);
  }
  const get = (name: string): string | undefined => {
    const value = env[name] ?? fileValues[name];
    return value === undefined || value === '' ? undefined : value;
  };

  const databaseUrl = get('VAKT_DATABASE_URL') ?? 'sqlite:./data/vakt.db';
  if (!/^(sqlite:|postgres:\/\/|postgresql:\/\/)/.test(databaseUrl)) {
    problems.push('VAKT_DATABASE_URL: expected sqlite:<path> or postgres://…');
  }
  const redisUrl = get('VAKT_REDIS_URL') ?? null;
  if (redisUrl !== null && !/^rediss?:\/\//.test(redisUrl)) {
    problems.push('VAKT_REDIS_URL: expected redis://host:port[/db]');
  }
  const host = get('VAKT_HOST') ?? '127.0.0.1';
  const port = parseInteger('VAKT_PORT', get('VAKT_PORT') ?? '8080', 0, 65535, problems);
  let publicUrl = get('VAKT_PUBLIC_URL') ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  try {
    const url = new URL(publicUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    publicUrl = publicUrl.replace(/\/+$/, '');
  } catch {
    problems.push(`VAKT_PUBLIC_URL: "${publicUrl}" is not an http(s) URL`);
  }
  const logLevel = (get('VAKT_LOG_LEVEL') ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`VAKT_LOG_LEVEL: expected one of ${LOG_LEVELS.join(', ')}`);
  }

  const config: Config = {
    databaseUrl,
    databasePoolSize: parseInteger(
      'VAKT_DATABASE_POOL_SIZE',
      get('VAKT_DATABASE_POOL_SIZE') ?? '10',
      1,
      500,
      problems,
    ),
    redisUrl,
    host,
    port,
    publicUrl,
    trustedProxies: parseCidrList('VAKT_TRUSTED_PROXIES', get('VAKT_TRUSTED_PROXIES') ?? '', problems),
    allowlist: parseCidrList('VAKT_ALLOWLIST', get('VAKT_ALLOWLIST') ?? '', problems),
    retentionDays: parseInteger('VAKT_RETENTION_DAYS', get('VAKT_RETENTION_DAYS') ?? '30', 1, 3650, problems),
    taxiiScoreMinimum: parseInteger(
      'VAKT_TAXII_SCORE_MINIMUM',
      get('VAKT_TAXII_SCORE_MINIMUM') ?? '50',
      0,
      100,
      problems,
    ),
    logLevel,
    tiers: parseTierLimits(get('VAKT_TIER_LIMITS') ?? '', problems),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

/** The configuration as safe to print: credentials inside URLs are masked. */
export function redactedConfig(config: Config): Record<string, unknown> {
  const mask = (url: string | null) => (url ? url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@') : url);
  return {
    ...config,
    databaseUrl: mask(config.databaseUrl),
    redisUrl: mask(config.redisUrl),
    tiers: undefined,
  };
}
