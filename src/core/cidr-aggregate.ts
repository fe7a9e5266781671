// Exact CIDR aggregation, merging and subtraction over mixed IPv4/IPv6 address and CIDR lists (SPEC §3.2 `aggregate`, §8 guard merge).

import type { Cidr } from './ip.js';
import { ipFromKey, parseCidr, parseIp } from './ip.js';

/** One CIDR of an aggregated result. A single address is a /32 (IPv4) or /128 (IPv6). */
export interface AggregatedCidr {
  /**
   * Canonical text: "45.83.0.0/24", "2a05:d014:ff:212::/64"; a single address (/32, /128) is written
   * bare ("1.2.3.4"), as blocklists, `iprange` and firewall sets expect.
   */
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

/**
 * A bare dotted quad ("1.2.3.4": no prefix, no space, no leading zero) in `text[start, end)` as uint32, or
 * -1 for anything else
 * (the caller then takes the general path, which decides). The shape stored `ip` text always has.
 */
function parseV4Plain(text: string, start = 0, end = text.length): number {
  if (end - start < 7 || end - start > 15) return -1;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
      continue;
    }
    const digit = code - 48;
    // A second digit after a leading "0" is a leading zero (refused, SPEC §2.4).
    if (digit < 0 || digit > 9 || digits === 3 || (digits === 1 && octet === 0)) return -1;
    octet = octet * 10 + digit;
    if (octet > 255) return -1;
    digits++;
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

/** A growable Uint32Array for single IPv4 addresses, which dominate real lists. */
class GrowableUint32 {
  data = new Uint32Array(1024);
  length = 0;
  push(value: number): void {
    if (this.length === this.data.length) {
      const grown = new Uint32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = value;
  }
}

/** Collects addresses and CIDRs, then sorts and merges them once in `build()`. */
export class RangeSetBuilder {
  // IPv4 single addresses as uint32 (radix-sorted later); IPv4 CIDRs wider than /32 encoded as
  // start*64 + hostBits in a Float64Array (exact: < 2^38); IPv6 as [start, end] bigint pairs.
  #v4Singles = new GrowableUint32();
  #v4Blocks: number[] = [];
  #v6: bigint[] = [];

  #pushV4(value: number, hostBits: number): void {
    if (hostBits === 0) {
      this.#v4Singles.push(value);
    } else {
      const blockSize = 2 ** hostBits;
      this.#v4Blocks.push((value - (value % blockSize)) * 64 + hostBits);
    }
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
      const hostBits = encoded % 64;
      this.#pushV4((encoded - hostBits) / 64, hostBits);
      return true;
    }
    const parsed = parseCidr(text);
    if (!parsed.ok) return false;
    this.addCidr(parsed.cidr);
    return true;
  }

  /** `add` for every entry (entries that are neither an address nor a CIDR are skipped, as `add` does). */
  addAll(entries: readonly string[]): void {
    const singles = this.#v4Singles;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as string;
      const value = parseV4Plain(entry);
      if (value >= 0) singles.push(value);
      else this.add(entry);
    }
  }

  /**
   * `addAll(text.split("\n"))` without the array: lines that are bare dotted quads are parsed in place,
   * anything else goes through `add` (empty lines are skipped, as `add` skips them).
   */
  addLines(text: string): void {
    const singles = this.#v4Singles;
    const length = text.length;
    let start = 0;
    while (start <= length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = length;
      // Dotted quads parsed in place (no substring per line); -1 when the line is anything else.
      const value = parseV4Plain(text, start, end);
      if (value >= 0) singles.push(value);
      else if (end > start) this.add(text.slice(start, end));
      start = end + 1;
    }
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
      this.#pushV4(value, 32 - prefix);
      return;
    }
    const prefix = prefixLength ?? 128;
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > 128) throw new RangeError('IPv6 prefix is 0-128');
    this.#pushV6(keyToBigInt(key), prefix);
  }

  /** Sorts and merges everything added so far into a RangeSet (overlapping and adjacent ranges join). */
  build(): RangeSet {
    const singles = radixSortUint32(this.#v4Singles.data.subarray(0, this.#v4Singles.length));
    const blocks = Float64Array.from(this.#v4Blocks).sort();
    return { v4: mergeV4(singles, blocks), v6: mergeV6(this.#v6) };
  }
}

/** LSD radix sort in two 16-bit passes: about twice as fast as TypedArray#sort at 10^5-10^6 entries. */
function radixSortUint32(input: Uint32Array): Uint32Array {
  const length = input.length;
  let source = Uint32Array.from(input);
  if (length < 2048) return source.sort();
  let target = new Uint32Array(length);
  const counts = new Uint32Array(65536);
  for (let shift = 0; shift < 32; shift += 16) {
    counts.fill(0);
    for (let i = 0; i < length; i++) {
      const bucket = ((source[i] ?? 0) >>> shift) & 0xffff;
      counts[bucket] = (counts[bucket] ?? 0) + 1;
    }
    let offset = 0;
    for (let bucket = 0; bucket < 65536; bucket++) {
      const count = counts[bucket] ?? 0;
      counts[bucket] = offset;
      offset += count;
    }
    for (let i = 0; i < length; i++) {
      const value = source[i] ?? 0;
      const bucket = (value >>> shift) & 0xffff;
      const position = counts[bucket] ?? 0;
      target[position] = value;
      counts[bucket] = position + 1;
    }
    const swap = source;
    source = target;
    target = swap;
  }
  return source;
}

/** Merges sorted single addresses and sorted encoded blocks into disjoint, non-adjacent intervals. */
function mergeV4(singles: Uint32Array, blocks: Float64Array): Float64Array {
  const out = new Float64Array(2 * (singles.length + blocks.length));
  let outLength = 0;
  let currentStart = -1;
  let currentEnd = -2;
  let i = 0;
  let j = 0;
  while (i < singles.length || j < blocks.length) {
    let start: number;
    let end: number;
    const single = i < singles.length ? (singles[i] ?? 0) : TWO_POW_32;
    const block = j < blocks.length ? (blocks[j] ?? 0) : TWO_POW_32 * 64;
    const blockHostBits = block % 64;
    const blockStart = (block - blockHostBits) / 64;
    if (single <= blockStart && i < singles.length) {
      start = single;
      end = single;
      i++;
    } else {
      start = blockStart;
      end = blockStart + 2 ** blockHostBits - 1;
      j++;
    }
    if (start <= currentEnd + 1) {
      if (end > currentEnd) currentEnd = end;
    } else {
      if (currentStart >= 0) {
        out[outLength++] = currentStart;
        out[outLength++] = currentEnd;
      }
      currentStart = start;
      currentEnd = end;
    }
  }
  if (currentStart >= 0) {
    out[outLength++] = currentStart;
    out[outLength++] = currentEnd;
  }
  return out.slice(0, outLength);
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

// Octet strings precomputed: number-to-string conversion dominated output time at 10^5 CIDRs.
const OCTETS = Array.from({ length: 256 }, (_, index) => String(index));
const DOTTED = Array.from({ length: 256 }, (_, index) => `${index}.`);

function v4Text(value: number): string {
  return (
    (DOTTED[value >>> 24] ?? '') +
    (DOTTED[(value >>> 16) & 255] ?? '') +
    (DOTTED[(value >>> 8) & 255] ?? '') +
    (OCTETS[value & 255] ?? '')
  );
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

const SUFFIXES = Array.from({ length: 33 }, (_, index) => `/${index}`);

/** Host bits of the largest CIDR block that starts at `cursor` and ends at or before `end` (uint32). */
function v4BlockHostBits(cursor: number, end: number): number {
  // Largest block aligned at cursor: its lowest set bit (2^32 for 0), shrunk to fit the range.
  let size = cursor === 0 ? TWO_POW_32 : (cursor & -cursor) >>> 0;
  const remaining = end - cursor + 1;
  while (size > remaining) size /= 2;
  return size === TWO_POW_32 ? 32 : 31 - Math.clz32(size);
}

/** Appends the minimal CIDR cover of the inclusive uint32 range [start, end]. */
function v4RangeToCidrs(start: number, end: number, visit: CidrVisitor): void {
  let cursor = start;
  while (cursor <= end) {
    const hostBits = v4BlockHostBits(cursor, end);
    const address = v4Text(cursor);
    const prefixLength = 32 - hostBits;
    visit(hostBits === 0 ? address : address + (SUFFIXES[prefixLength] ?? ''), address, prefixLength, 4);
    cursor += 2 ** hostBits;
  }
}

// Writes the decimal digits of 0-255 at `pos`; returns the position after them.
function writeDecimal(bytes: Uint8Array, pos: number, value: number): number {
  if (value >= 100) {
    bytes[pos++] = 48 + Math.floor(value / 100);
    bytes[pos++] = 48 + (Math.floor(value / 10) % 10);
  } else if (value >= 10) bytes[pos++] = 48 + Math.floor(value / 10);
  bytes[pos++] = 48 + (value % 10);
  return pos;
}

/**
 * The minimal exact CIDR cover (see forEachCidr) as text lines, each ending in "\n", in chunks of about
 * `linesPerChunk` lines (IPv4 exactly; an IPv6 range's CIDRs stay in one chunk): byte for byte `toCidrTexts(set)` with a "\n" after each text. IPv4 lines
 * are written as ASCII bytes and decoded once per chunk, so no string is made per CIDR (for writers
 * that need only the text: plaintext and the like).
 */
export function* cidrLineChunks(set: RangeSet, linesPerChunk = 16_384): Generator<string> {
  const per = Math.max(1, Math.floor(linesPerChunk));
  // "255.255.255.255/32\n" is the longest IPv4 line: 19 bytes.
  const bytes = Buffer.allocUnsafe(per * 19);
  let pos = 0;
  let lines = 0;
  const v4 = set.v4;
  for (let i = 0; i + 1 < v4.length; i += 2) {
    let cursor = v4[i] ?? 0;
    const end = v4[i + 1] ?? 0;
    while (cursor <= end) {
      const hostBits = v4BlockHostBits(cursor, end);
      pos = writeDecimal(bytes, pos, cursor >>> 24);
      bytes[pos++] = 46;
      pos = writeDecimal(bytes, pos, (cursor >>> 16) & 255);
      bytes[pos++] = 46;
      pos = writeDecimal(bytes, pos, (cursor >>> 8) & 255);
      bytes[pos++] = 46;
      pos = writeDecimal(bytes, pos, cursor & 255);
      if (hostBits > 0) {
        bytes[pos++] = 47;
        pos = writeDecimal(bytes, pos, 32 - hostBits);
      }
      bytes[pos++] = 10;
      cursor += 2 ** hostBits;
      if (++lines === per) {
        yield bytes.toString('latin1', 0, pos);
        pos = 0;
        lines = 0;
      }
    }
  }
  if (pos > 0) yield bytes.toString('latin1', 0, pos);
  let parts: string[] = [];
  for (let i = 0; i + 1 < set.v6.length; i += 2) {
    v6RangeToCidrs(set.v6[i] ?? 0n, set.v6[i + 1] ?? 0n, (text) => {
      parts.push(`${text}\n`);
    });
    if (parts.length >= per) {
      yield parts.join('');
      parts = [];
    }
  }
  if (parts.length > 0) yield parts.join('');
}

function bitLength(value: bigint): number {
  return value === 0n ? 0 : value.toString(2).length;
}

/** Appends the minimal CIDR cover of the inclusive 128-bit range [start, end]. */
function v6RangeToCidrs(start: bigint, end: bigint, visit: CidrVisitor): void {
  let cursor = start;
  while (cursor <= end) {
    const alignBits = cursor === 0n ? 128 : bitLength(cursor & -cursor) - 1;
    const fitBits = bitLength(end - cursor + 1n) - 1;
    const hostBits = Math.min(alignBits, fitBits);
    const address = v6Text(cursor);
    const prefixLength = 128 - hostBits;
    visit(hostBits === 0 ? address : `${address}/${prefixLength}`, address, prefixLength, 6);
    if (hostBits === 128) break;
    cursor += 1n << BigInt(hostBits);
    if (cursor > V6_ALL) break;
  }
}

/** Receives one CIDR of a minimal cover: text as in AggregatedCidr.text, bare address, prefix, family. */
export type CidrVisitor = (text: string, address: string, prefixLength: number, version: 4 | 6) => void;

/**
 * Visits the smallest exact set of CIDRs whose union is the set: every CIDR lies wholly inside it, none
 * overlap, and no smaller list covers it. IPv4 first, then IPv6, each in ascending address order.
 * Allocates nothing per CIDR beyond its text, for writers that stream the result.
 */
export function forEachCidr(set: RangeSet, visit: CidrVisitor): void {
  for (let i = 0; i + 1 < set.v4.length; i += 2) v4RangeToCidrs(set.v4[i] ?? 0, set.v4[i + 1] ?? 0, visit);
  for (let i = 0; i + 1 < set.v6.length; i += 2) v6RangeToCidrs(set.v6[i] ?? 0n, set.v6[i + 1] ?? 0n, visit);
}

/** The minimal exact CIDR cover (see forEachCidr) as objects. */
export function toCidrs(set: RangeSet): AggregatedCidr[] {
  const out: AggregatedCidr[] = [];
  forEachCidr(set, (text, address, prefixLength, version) => {
    out.push({ text, address, version, prefixLength });
  });
  return out;
}

/** The minimal exact CIDR cover (see forEachCidr) as text only: bare addresses and "a/n" CIDRs. */
export function toCidrTexts(set: RangeSet): string[] {
  const out: string[] = [];
  forEachCidr(set, (text) => {
    out.push(text);
  });
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

/**
 * Membership test against a RangeSet by binary search: `hasLine` takes canonical address text (bare
 * dotted quads parsed in place, no string or key made), `hasKey` a 16-byte key (IPv4 mapped).
 */
export class RangeLookup {
  readonly #v4: Float64Array;
  readonly #v6: readonly bigint[];

  constructor(set: RangeSet) {
    this.#v4 = set.v4;
    this.#v6 = set.v6;
  }

  get empty(): boolean {
    return this.#v4.length === 0 && this.#v6.length === 0;
  }

  hasLine(text: string): boolean {
    const value = parseV4Plain(text);
    if (value >= 0) return this.#hasV4(value);
    if (this.#v6.length === 0 && this.#v4.length === 0) return false;
    const parsed = parseIp(text);
    return parsed.ok && this.hasKey(parsed.ip.key);
  }

  hasKey(key: Uint8Array): boolean {
    if (isV4MappedKey(key)) {
      const value =
        (key[12] ?? 0) * 16777216 + (key[13] ?? 0) * 65536 + (key[14] ?? 0) * 256 + (key[15] ?? 0);
      return this.#hasV4(value);
    }
    const v6 = this.#v6;
    if (v6.length === 0) return false;
    const value = keyToBigInt(key);
    let lo = 0;
    let hi = v6.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((v6[mid * 2 + 1] ?? 0n) < value) lo = mid + 1;
      else if ((v6[mid * 2] ?? 0n) > value) hi = mid - 1;
      else return true;
    }
    return false;
  }

  #hasV4(value: number): boolean {
    const v4 = this.#v4;
    let lo = 0;
    let hi = v4.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((v4[mid * 2 + 1] ?? 0) < value) lo = mid + 1;
      else if ((v4[mid * 2] ?? 0) > value) hi = mid - 1;
      else return true;
    }
    return false;
  }
}
