// Exact CIDR aggregation, merging and subtraction over mixed IPv4/IPv6 address and CIDR lists (SPEC §3.2 `aggregate`, §8 guard merge).

import type { Cidr } from './ip.js';
import { ipFromKey, parseCidr } from './ip.js';

/** One CIDR of an aggregated result. A single address is a /32 (IPv4) or /128 (IPv6). */
export interface AggregatedCidr {
  /** Canonical text: "45.83.0.0/24", "2a05:d014:ff:212::/64"; a full-length prefix is written "1.2.3.4/32". */
  readonly text: string;
  /** The bare network address (canonical text, no prefix). */
  readonly address: string;
  readonly version: 4 | 6;
  /** Prefix length in the address's own family (0-32 or 0-128). */
  readonly prefixLength: number;
}

/**
 * A set of addresses as sorted, disjoint, non-adjacent inclusive intervals.
 * IPv4 intervals are `[start, end]` pairs of uint32 values in a Float64Array (exact below 2^53);
 * IPv6 intervals are `[start, end]` pairs of 128-bit bigints.
 */
export interface RangeSet {
  readonly v4: Float64Array;
  readonly v6: readonly bigint[];
}

const TWO_POW_32 = 4294967296;
const V6_ALL = (1n << 128n) - 1n;

/**
 * Fast path for dotted-quad IPv4 with an optional "/n" suffix: returns start*64 + hostBits (an exact
 * double), or -1 when the text is anything else (IPv6, mapped forms, junk) so that the caller falls back
 * to the full parser. Leading-zero octets are refused like parseIp does (SPEC §2.4).
 */
function parseV4Encoded(text: string): number {
  const length = text.length;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let firstDigitZero = false;
  let i = 0;
  for (; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 48 && code <= 57) {
      if (digits === 0) firstDigitZero = code === 48;
      else if (firstDigitZero) return -1;
      octet = octet * 10 + (code - 48);
      digits++;
      if (digits > 3 || octet > 255) return -1;
    } else if (code === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (code === 47) {
      break;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  value = value * 256 + octet;
  let prefix = 32;
  if (i < length) {
    const suffix = text.slice(i + 1);
    if (suffix.length === 0 || suffix.length > 2) return -1;
    prefix = 0;
    for (let j = 0; j < suffix.length; j++) {
      const code = suffix.charCodeAt(j);
      if (code < 48 || code > 57) return -1;
      prefix = prefix * 10 + (code - 48);
    }
    if (prefix > 32) return -1;
  }
  const hostBits = 32 - prefix;
  const blockSize = 2 ** hostBits;
  const start = value - (value % blockSize); // clear host bits: "1.2.3.4/24" means 1.2.3.0/24
  return start * 64 + hostBits;
}

function keyToBigInt(key: Uint8Array): bigint {
  let value = 0n;
  for (let i = 0; i < 16; i++) value = (value << 8n) | BigInt(key[i] ?? 0);
  return value;
}

function isV4MappedKey(key: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (key[i] !== 0) return false;
  return key[10] === 0xff && key[11] === 0xff;
}

/** Collects addresses and CIDRs, then sorts and merges them once in `build()`. */
export class RangeSetBuilder {
  #v4 = new Float64Array(1024);
  #v4Length = 0;
  #v6: bigint[] = [];

  #pushV4(encoded: number): void {
    if (this.#v4Length === this.#v4.length) {
      const grown = new Float64Array(this.#v4.length * 2);
      grown.set(this.#v4);
      this.#v4 = grown;
    }
    this.#v4[this.#v4Length++] = encoded;
  }

  #pushV6(start: bigint, prefixLength: number): void {
    const hostBits = BigInt(128 - prefixLength);
    const first = (start >> hostBits) << hostBits;
    this.#v6.push(first, first + (1n << hostBits) - 1n);
  }

  /**
   * Adds an address or CIDR in text form ("1.2.3.4", "1.2.3.0/24", "2001:db8::/32", "::ffff:1.2.3.4").
   * Host bits after the prefix are ignored ("1.2.3.4/24" adds 1.2.3.0/24). Surrounding whitespace is
   * tolerated. Returns false, adding nothing, when the text is neither an address nor a CIDR.
   */
  add(entry: string): boolean {
    let text = entry;
    const length = text.length;
    if (length === 0) return false;
    if (text.charCodeAt(0) <= 32 || text.charCodeAt(length - 1) <= 32) text = text.trim();
    const encoded = parseV4Encoded(text);
    if (encoded >= 0) {
      this.#pushV4(encoded);
      return true;
    }
    const parsed = parseCidr(text);
    if (!parsed.ok) return false;
    this.addCidr(parsed.cidr);
    return true;
  }

  /** Adds a parsed CIDR (see ip.ts). */
  addCidr(cidr: Cidr): void {
    this.addKey(cidr.network.key, cidr.prefixLength);
  }

  /**
   * Adds a 16-byte key (IPv4 mapped into IPv6, as stored) with an optional family prefix length
   * (default: a single address). Host bits are ignored.
   */
  addKey(key: Uint8Array, prefixLength?: number): void {
    if (key.length !== 16) throw new RangeError('an IP key is 16 bytes');
    if (isV4MappedKey(key)) {
      const prefix = prefixLength ?? 32;
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new RangeError('IPv4 prefix is 0-32');
      const value =
        (key[12] ?? 0) * 16777216 + (key[13] ?? 0) * 65536 + (key[14] ?? 0) * 256 + (key[15] ?? 0);
      const hostBits = 32 - prefix;
      const blockSize = 2 ** hostBits;
      this.#pushV4((value - (value % blockSize)) * 64 + hostBits);
      return;
    }
    const prefix = prefixLength ?? 128;
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > 128) throw new RangeError('IPv6 prefix is 0-128');
    this.#pushV6(keyToBigInt(key), prefix);
  }

  /** Sorts and merges everything added so far into a RangeSet (overlapping and adjacent ranges join). */
  build(): RangeSet {
    return { v4: mergeV4(this.#v4.subarray(0, this.#v4Length)), v6: mergeV6(this.#v6) };
  }
}

function mergeV4(encoded: Float64Array): Float64Array {
  const sorted = Float64Array.from(encoded).sort();
  const out: number[] = [];
  let currentStart = -1;
  let currentEnd = -2;
  for (let i = 0; i < sorted.length; i++) {
    const value = sorted[i] ?? 0;
    const hostBits = value % 64;
    const start = (value - hostBits) / 64;
    const end = start + 2 ** hostBits - 1;
    if (start <= currentEnd + 1) {
      if (end > currentEnd) currentEnd = end;
    } else {
      if (currentStart >= 0) out.push(currentStart, currentEnd);
      currentStart = start;
      currentEnd = end;
    }
  }
  if (currentStart >= 0) out.push(currentStart, currentEnd);
  return Float64Array.from(out);
}

function mergeV6(pairs: readonly bigint[]): bigint[] {
  const ranges: [bigint, bigint][] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2) ranges.push([pairs[i] ?? 0n, pairs[i + 1] ?? 0n]);
  ranges.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: bigint[] = [];
  let current: [bigint, bigint] | null = null;
  for (const range of ranges) {
    if (current && range[0] <= current[1] + 1n) {
      if (range[1] > current[1]) current[1] = range[1];
    } else {
      if (current) out.push(current[0], current[1]);
      current = [range[0], range[1]];
    }
  }
  if (current) out.push(current[0], current[1]);
  return out;
}

function v4Text(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

function v6Text(value: bigint): string {
  const key = Buffer.alloc(16);
  key.writeBigUInt64BE(value >> 64n, 0);
  key.writeBigUInt64BE(value & 0xffffffffffffffffn, 8);
  // Mapped keys are routed to the v4 side on input, but a wide IPv6 CIDR (e.g. ::/0) may still split
  // into a block inside ::ffff:0:0/96, which ipFromKey would print as IPv4; keep it IPv6 text.
  const ip = ipFromKey(key);
  return ip.version === 6 ? ip.text : `::ffff:${ip.text}`;
}

/** Appends the minimal CIDR cover of the inclusive uint32 range [start, end]. */
function v4RangeToCidrs(start: number, end: number, out: AggregatedCidr[]): void {
  let cursor = start;
  while (cursor <= end) {
    // Largest block aligned at cursor: its lowest set bit (2^32 for 0), shrunk to fit the range.
    let size = cursor === 0 ? TWO_POW_32 : (cursor & -cursor) >>> 0;
    const remaining = end - cursor + 1;
    while (size > remaining) size /= 2;
    const hostBits = size === TWO_POW_32 ? 32 : 31 - Math.clz32(size);
    const address = v4Text(cursor);
    const prefixLength = 32 - hostBits;
    out.push({ text: `${address}/${prefixLength}`, address, version: 4, prefixLength });
    cursor += size;
  }
}

function bitLength(value: bigint): number {
  return value === 0n ? 0 : value.toString(2).length;
}

/** Appends the minimal CIDR cover of the inclusive 128-bit range [start, end]. */
function v6RangeToCidrs(start: bigint, end: bigint, out: AggregatedCidr[]): void {
  let cursor = start;
  while (cursor <= end) {
    const alignBits = cursor === 0n ? 128 : bitLength(cursor & -cursor) - 1;
    const fitBits = bitLength(end - cursor + 1n) - 1;
    const hostBits = Math.min(alignBits, fitBits);
    const address = v6Text(cursor);
    const prefixLength = 128 - hostBits;
    out.push({ text: `${address}/${prefixLength}`, address, version: 6, prefixLength });
    if (hostBits === 128) break;
    cursor += 1n << BigInt(hostBits);
    if (cursor > V6_ALL) break;
  }
}

/**
 * The smallest exact set of CIDRs whose union is the set: every CIDR lies wholly inside it, none
 * overlap, and no smaller list covers it. IPv4 first, then IPv6, each in ascending address order.
 */
export function toCidrs(set: RangeSet): AggregatedCidr[] {
  const out: AggregatedCidr[] = [];
  for (let i = 0; i + 1 < set.v4.length; i += 2) v4RangeToCidrs(set.v4[i] ?? 0, set.v4[i + 1] ?? 0, out);
  for (let i = 0; i + 1 < set.v6.length; i += 2) v6RangeToCidrs(set.v6[i] ?? 0n, set.v6[i + 1] ?? 0n, out);
  return out;
}

// Both inputs are sorted and disjoint, so one forward sweep suffices. Written twice (number and
// bigint) because TypeScript cannot do arithmetic on a `number | bigint` type parameter.
function subtractV4(from: Float64Array, excluded: Float64Array): Float64Array {
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i + 1 < from.length; i += 2) {
    let start = from[i] ?? 0;
    const end = from[i + 1] ?? 0;
    while (j + 1 < excluded.length && (excluded[j + 1] ?? 0) < start) j += 2;
    let open = true;
    for (let k = j; k + 1 < excluded.length && (excluded[k] ?? 0) <= end; k += 2) {
      const cutStart = excluded[k] ?? 0;
      const cutEnd = excluded[k + 1] ?? 0;
      if (cutStart > start) out.push(start, cutStart - 1);
      if (cutEnd >= end) {
        open = false;
        break;
      }
      start = cutEnd + 1;
    }
    if (open) out.push(start, end);
  }
  return Float64Array.from(out);
}

function subtractV6(from: readonly bigint[], excluded: readonly bigint[]): bigint[] {
  const out: bigint[] = [];
  let j = 0;
  for (let i = 0; i + 1 < from.length; i += 2) {
    let start = from[i] ?? 0n;
    const end = from[i + 1] ?? 0n;
    while (j + 1 < excluded.length && (excluded[j + 1] ?? 0n) < start) j += 2;
    let open = true;
    for (let k = j; k + 1 < excluded.length && (excluded[k] ?? 0n) <= end; k += 2) {
      const cutStart = excluded[k] ?? 0n;
      const cutEnd = excluded[k + 1] ?? 0n;
      if (cutStart > start) out.push(start, cutStart - 1n);
      if (cutEnd >= end) {
        open = false;
        break;
      }
      start = cutEnd + 1n;
    }
    if (open) out.push(start, end);
  }
  return out;
}

/** Removes every address of `excluded` from `set` (e.g. the guard's safety allowlist, SPEC §8). */
export function subtractRanges(set: RangeSet, excluded: RangeSet): RangeSet {
  return { v4: subtractV4(set.v4, excluded.v4), v6: subtractV6(set.v6, excluded.v6) };
}

export interface AggregateOptions {
  /** Called for each entry that is neither an address nor a CIDR; without it such an entry throws. */
  onInvalid?: (entry: string) => void;
}

/** Builds a RangeSet from text entries (addresses and CIDRs, IPv4 and IPv6 mixed, duplicates allowed). */
export function buildRangeSet(entries: Iterable<string>, options: AggregateOptions = {}): RangeSet {
  const builder = new RangeSetBuilder();
  for (const entry of entries) {
    if (!builder.add(entry)) {
      if (options.onInvalid) options.onInvalid(entry);
      else throw new RangeError(`not an IP address or CIDR: ${JSON.stringify(entry.slice(0, 60))}`);
    }
  }
  return builder.build();
}

/**
 * Aggregates addresses and CIDRs into the smallest exact, non-overlapping CIDR list (SPEC §3.2
 * `aggregate`: only ranges whose every address is listed).
 */
export function aggregate(entries: Iterable<string>, options: AggregateOptions = {}): AggregatedCidr[] {
  return toCidrs(buildRangeSet(entries, options));
}

/** Aggregates `list` and removes every address covered by `excluded` (CIDRs or addresses). */
export function subtract(
  list: Iterable<string>,
  excluded: Iterable<string>,
  options: AggregateOptions = {},
): AggregatedCidr[] {
  return toCidrs(subtractRanges(buildRangeSet(list, options), buildRangeSet(excluded, options)));
}
