// IP address parsing, canonicalisation (SPEC §2.4), 16-byte keys and public/non-public classification.

/** An address after canonicalisation: IPv4-mapped IPv6 is IPv4, IPv6 is RFC 5952 text. */
export interface IpAddress {
  /** Canonical text form (dotted quad, or RFC 5952 IPv6). */
  readonly text: string;
  readonly version: 4 | 6;
  /** 16 bytes; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) so v4 and v6 sort in one ordered index. */
  readonly key: Buffer;
}

export type IpParseResult = { ok: true; ip: IpAddress } | { ok: false; reason: string };

const V4_MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

const V4_PARTS = 'an IPv4 address has four dot-separated numbers';
const V4_OCTET = 'IPv4 octets are decimal numbers 0-255';
const V4_LEADING_ZERO = 'leading zeros in an IPv4 octet are ambiguous';

/**
 * The four octets of dotted-quad text, or why it is not one: four dot-separated parts of 1–3 decimal
 * digits, no leading zero, each ≤ 255 (parts checked in order). A scan over char codes: every check and
 * report parses addresses, and a split plus a regular expression per part cost ~1.5 µs each.
 */
function parseV4Octets(text: string): number[] | string {
  let dots = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 46) dots++;
  if (dots !== 3) return V4_PARTS;
  const octets = [0, 0, 0, 0];
  let start = 0;
  for (let part = 0; part < 4; part++) {
    let end = text.indexOf('.', start);
    if (end < 0) end = text.length;
    const length = end - start;
    if (length < 1 || length > 3) return V4_OCTET;
    let value = 0;
    for (let i = start; i < end; i++) {
      const digit = text.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) return V4_OCTET;
      value = value * 10 + digit;
    }
    if (length > 1 && text.charCodeAt(start) === 48) return V4_LEADING_ZERO;
    if (value > 255) return V4_OCTET;
    octets[part] = value;
    start = end + 1;
  }
  return octets;
}

function parseV6Bytes(text: string): Buffer | string {
  if (text.length > 45) return 'too long for an IPv6 address';
  if (text.includes('%')) return 'zone identifiers are not accepted';
  let head = text;
  let v4Tail: number[] | null = null;
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.indexOf('.', lastColon) > 0) {
    const octets = parseV4Octets(text.slice(lastColon + 1));
    if (typeof octets === 'string') return octets;
    v4Tail = octets;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const doubleColon = head.indexOf('::');
  if (doubleColon !== head.lastIndexOf('::')) return 'only one "::" is allowed';
  const parseGroups = (part: string): number[] | string => {
    if (part === '') return [];
    const groups: number[] = [];
    for (const group of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return 'IPv6 groups are 1-4 hexadecimal digits';
      groups.push(Number.parseInt(group, 16));
    }
    return groups;
  };
  let groups: number[];
  if (doubleColon >= 0) {
    const left = parseGroups(head.slice(0, doubleColon));
    const right = parseGroups(head.slice(doubleColon + 2));
    if (typeof left === 'string') return left;
    if (typeof right === 'string') return right;
    const missing = 8 - left.length - right.length;
    if (missing < 1) return 'too many IPv6 groups';
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    const all = parseGroups(head);
    if (typeof all === 'string') return all;
    if (all.length !== 8) return 'an IPv6 address has eight groups';
    groups = all;
  }
  const bytes = Buffer.alloc(16);
  groups.forEach((group, index) => {
    bytes.writeUInt16BE(group, index * 2);
  });
  if (v4Tail) bytes.set(v4Tail, 12);
  return bytes;
}

function isV4Mapped(key: Buffer): boolean {
  return key.subarray(0, 12).equals(V4_MAPPED_PREFIX);
}

/** Formats 16 bytes of IPv6 as RFC 5952 text (lower case, no leading zeros, longest zero run as "::"). */
function formatV6(key: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(key.readUInt16BE(i * 2));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** Builds an IpAddress from a 16-byte key (the inverse of `parseIp(...).ip.key`). */
export function ipFromKey(key: Buffer | Uint8Array): IpAddress {
  const buffer = Buffer.isBuffer(key) ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  if (buffer.length !== 16) throw new RangeError('an IP key is 16 bytes');
  if (isV4Mapped(buffer)) {
    return { text: `${buffer[12]}.${buffer[13]}.${buffer[14]}.${buffer[15]}`, version: 4, key: buffer };
  }
  return { text: formatV6(buffer), version: 6, key: buffer };
}

/**
 * Parses an IPv4 or IPv6 address and canonicalises it (SPEC §2.4). Surrounding whitespace and
 * IPv6 brackets are tolerated; zone ids, CIDR suffixes and leading-zero IPv4 octets are refused.
 */
export function parseIp(input: string): IpParseResult {
  let text = input.trim();
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  if (text === '') return { ok: false, reason: 'empty address' };
  if (text.includes(':')) {
    const bytes = parseV6Bytes(text);
    if (typeof bytes === 'string') return { ok: false, reason: bytes };
    return { ok: true, ip: ipFromKey(bytes) };
  }
  const octets = parseV4Octets(text);
  if (typeof octets === 'string') return { ok: false, reason: octets };
  const key = Buffer.alloc(16);
  key.set(V4_MAPPED_PREFIX, 0);
  key.set(octets, 12);
  return { ok: true, ip: { text: octets.join('.'), version: 4, key } };
}

/** A network: the first address's key and a prefix length counted over the 128-bit key space. */
export interface Cidr {
  readonly network: IpAddress;
  /** Prefix length in the address's own family (0-32 for IPv4, 0-128 for IPv6). */
  readonly prefixLength: number;
  /** Prefix length over the 16-byte key (IPv4 prefixes + 96). */
  readonly keyPrefixLength: number;
  /** Canonical text, e.g. "45.83.0.0/24" or "2a05:d014:ff:212::/64". */
  readonly text: string;
}

export type CidrParseResult = { ok: true; cidr: Cidr; hostBitsSet: boolean } | { ok: false; reason: string };

/** Returns a copy of `key` with every bit after `keyPrefixLength` cleared (or set, with `fill`). */
export function maskKey(key: Buffer, keyPrefixLength: number, fill = false): Buffer {
  const out = Buffer.from(key);
  for (let bit = keyPrefixLength; bit < 128; bit++) {
    const index = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    out[index] = fill ? (out[index] ?? 0) | mask : (out[index] ?? 0) & ~mask;
  }
  return out;
}

/** Builds a CIDR from a key and a family prefix length; host bits are cleared. */
export function cidrFromKey(key: Buffer, prefixLength: number, version: 4 | 6): Cidr {
  const keyPrefixLength = version === 4 ? prefixLength + 96 : prefixLength;
  const network = ipFromKey(maskKey(key, keyPrefixLength));
  return { network, prefixLength, keyPrefixLength, text: `${network.text}/${prefixLength}` };
}

/**
 * Parses "a.b.c.d/n" or "v6::/n" (a bare address is a /32 or /128). Host bits are cleared and
 * reported through `hostBitsSet` so that callers can refuse or accept them.
 */
export function parseCidr(input: string): CidrParseResult {
  const text = input.trim();
  const slash = text.indexOf('/');
  const address = parseIp(slash >= 0 ? text.slice(0, slash) : text);
  if (!address.ok) return address;
  const max = address.ip.version === 4 ? 32 : 128;
  let prefixLength = max;
  if (slash >= 0) {
    const suffix = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(suffix) || Number(suffix) > max) {
      return { ok: false, reason: `the prefix length must be 0-${max}` };
    }
    prefixLength = Number(suffix);
  }
  const cidr = cidrFromKey(address.ip.key, prefixLength, address.ip.version);
  return { ok: true, cidr, hostBitsSet: !cidr.network.key.equals(address.ip.key) };
}

/** True when `key` lies inside `cidr`. */
export function cidrContains(cidr: Cidr, key: Buffer): boolean {
  return maskKey(key, cidr.keyPrefixLength).equals(cidr.network.key);
}

/** The last address of a CIDR, as a 16-byte key. */
export function cidrLastKey(cidr: Cidr): Buffer {
  return maskKey(cidr.network.key, cidr.keyPrefixLength, true);
}

// Special-purpose ranges that are never evidence (SPEC §2.4; IANA special-purpose registries).
const NON_PUBLIC_V4 = [
  '0.0.0.0/8', // "this network"
  '10.0.0.0/8', // RFC 1918
  '100.64.0.0/10', // CGNAT, RFC 6598
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local
  '172.16.0.0/12', // RFC 1918
  '192.0.0.0/24', // IETF protocol assignments
  '192.0.2.0/24', // TEST-NET-1 (documentation)
  '192.31.196.0/24', // AS112-v4
  '192.52.193.0/24', // AMT
  '192.88.99.0/24', // deprecated 6to4 relay anycast
  '192.168.0.0/16', // RFC 1918
  '192.175.48.0/24', // direct delegation AS112
  '198.18.0.0/15', // benchmarking
  '198.51.100.0/24', // TEST-NET-2 (documentation)
  '203.0.113.0/24', // TEST-NET-3 (documentation)
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, includes 255.255.255.255
];
// IPv6: only global unicast 2000::/3 can be public, minus these special-purpose blocks.
const NON_PUBLIC_V6_INSIDE_GLOBAL = [
  '2001:2::/48', // benchmarking
  '2001:10::/28', // ORCHID (deprecated)
  '2001:20::/28', // ORCHIDv2
  '2001:db8::/32', // documentation
  '3fff::/20', // documentation (RFC 9637)
];

interface KeyRange {
  first: Buffer;
  last: Buffer;
}

function toRanges(list: string[]): KeyRange[] {
  return list.map((text) => {
    const parsed = parseCidr(text);
    if (!parsed.ok) throw new Error(`bad built-in range ${text}`);
    return { first: parsed.cidr.network.key, last: cidrLastKey(parsed.cidr) };
  });
}

const nonPublicV4Ranges = toRanges(NON_PUBLIC_V4);
const nonPublicV6Ranges = toRanges(NON_PUBLIC_V6_INSIDE_GLOBAL);

/** The IPv4 address of a 16-byte key (its last four bytes) as an unsigned 32-bit number. */
function v4Number(key: Buffer): number {
  return (((key[12] ?? 0) << 24) | ((key[13] ?? 0) << 16) | ((key[14] ?? 0) << 8) | (key[15] ?? 0)) >>> 0;
}

// The IPv4 ranges as numbers: isPublicIp runs once per reported row, and a Buffer.compare per range
// (a native call each) cost ~2 µs per address.
const nonPublicV4Numbers = nonPublicV4Ranges.map((range) => ({
  first: v4Number(range.first),
  last: v4Number(range.last),
}));

function inRanges(key: Buffer, ranges: KeyRange[]): boolean {
  for (const range of ranges) {
    if (Buffer.compare(key, range.first) >= 0 && Buffer.compare(key, range.last) <= 0) return true;
  }
  return false;
}

/** True for globally routable unicast addresses; false for every range listed in SPEC §2.4. */
export function isPublicIp(ip: IpAddress): boolean {
  if (ip.version === 4) {
    const value = v4Number(ip.key);
    for (const range of nonPublicV4Numbers) if (value >= range.first && value <= range.last) return false;
    return true;
  }
  const first = ip.key[0] ?? 0;
  if ((first & 0xe0) !== 0x20) return false; // outside 2000::/3: ULA, link-local, multicast, ::1, ::, NAT64 …
  return !inRanges(ip.key, nonPublicV6Ranges);
}

function overlapsRanges(first: Buffer, last: Buffer, ranges: KeyRange[]): boolean {
  for (const range of ranges) {
    if (Buffer.compare(first, range.last) <= 0 && Buffer.compare(last, range.first) >= 0) return true;
  }
  return false;
}

/** True when every address of `cidr` is public (no overlap with any range listed in SPEC §2.4). */
export function isPublicCidr(cidr: Cidr): boolean {
  const first = cidr.network.key;
  const last = cidrLastKey(cidr);
  if (cidr.network.version === 4) return !overlapsRanges(first, last, nonPublicV4Ranges);
  const inGlobal = (key: Buffer) => ((key[0] ?? 0) & 0xe0) === 0x20;
  if (!inGlobal(first) || !inGlobal(last)) return false;
  return !overlapsRanges(first, last, nonPublicV6Ranges);
}
