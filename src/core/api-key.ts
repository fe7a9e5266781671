// API key format (SPEC §2.1): sk_<tier>_<secret>, secret ≥ 32 base62 characters; stored as SHA-256 only.
import { createHash, randomBytes } from 'node:crypto';
import { TIER_IDS, type TierId } from './tiers.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SECRET_LENGTH = 40;
const KEY_PATTERN = new RegExp(`^sk_(${TIER_IDS.join('|')})_([0-9A-Za-z]{32,128})$`);

/** Uniform random base62 text of `length` characters (rejection sampling, no modulo bias). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export function generateApiKey(tier: TierId): string {
  return `sk_${tier}_${randomBase62(SECRET_LENGTH)}`;
}

/** The tier named inside a well-formed key, or null when the text is not a key at all. */
export function parseApiKey(text: string): { tier: TierId } | null {
  const match = KEY_PATTERN.exec(text);
  return match ? { tier: match[1] as TierId } : null;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** What may be shown of a key after creation: the tier and the first four secret characters. */
export function displayPrefix(key: string): string {
  const cut = key.lastIndexOf('_') + 5;
  return `${key.slice(0, cut)}…`;
}
