// Sorted, disjoint address intervals mapped to small integer values, searched in O(log n) (geo/ASN tables, benign lists).

/**
 * A read-only table of inclusive address intervals. IPv4 intervals are uint32 pairs; IPv6 intervals are
 * 128-bit values split into high and low 64-bit halves. Each interval carries a value index the caller
 * maps to its own data (a country code, an ASN record, a source).
 */
export interface IntervalTable {
  /** The value index of the interval holding `key` (a 16-byte IP key, IPv4 mapped), or -1. */
  find(key: Uint8Array): number;
  readonly size: number;
}

const MASK_64 = (1n << 64n) - 1n;

function isV4MappedKey(key: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (key[i] !== 0) return false;
  return key[10] === 0xff && key[11] === 0xff;
}

function readUint64(key: Uint8Array, offset: number): bigint {
  let value = 0n;
  for (let i = offset; i < offset + 8; i++) value = (value << 8n) | BigInt(key[i] ?? 0);
  return value;
}

/** The 128-bit integer of a 16-byte key. */
export function keyToBigInt(key: Uint8Array): bigint {
  return (readUint64(key, 0) << 64n) | readUint64(key, 8);
}

/** The IPv4 value (0–2^32-1) of a mapped key, or -1 for IPv6. */
export function keyToV4(key: Uint8Array): number {
  if (!isV4MappedKey(key)) return -1;
  return (key[12] ?? 0) * 16777216 + (key[13] ?? 0) * 65536 + (key[14] ?? 0) * 256 + (key[15] ?? 0);
}

class Growable<T extends Uint32Array | BigUint64Array> {
  length = 0;
  constructor(
    public data: T,
    private readonly make: (size: number) => T,
  ) {}
  push(value: T extends BigUint64Array ? bigint : number): void {
    if (this.length === this.data.length) {
      const grown = this.make(this.data.length * 2);
      grown.set(this.data as never);
      this.data = grown;
    }
    (this.data as unknown as (number | bigint)[])[this.length++] = value;
  }
  done(): T {
    return this.data.slice(0, this.length) as T;
  }
}

const u32 = () => new Growable(new Uint32Array(1024), (n) => new Uint32Array(n));
const u64 = () => new Growable(new BigUint64Array(256), (n) => new BigUint64Array(n));

/**
 * Collects intervals, then builds the table. Intervals of one family must not overlap; they may come in
 * any order (sorted input, as the ip-location-db files are, skips the sort).
 */
export class IntervalTableBuilder {
  #v4Start = u32();
  #v4End = u32();
  #v4Value = u32();
  #v6StartHi = u64();
  #v6StartLo = u64();
  #v6EndHi = u64();
  #v6EndLo = u64();
  #v6Value = u32();

  /** Adds an IPv4 interval of uint32 values, inclusive. */
  addV4(start: number, end: number, value: number): void {
    this.#v4Start.push(start);
    this.#v4End.push(end);
    this.#v4Value.push(value);
  }

  /** Adds an IPv6 interval of 128-bit values, inclusive. */
  addV6(start: bigint, end: bigint, value: number): void {
    this.#v6StartHi.push(start >> 64n);
    this.#v6StartLo.push(start & MASK_64);
    this.#v6EndHi.push(end >> 64n);
    this.#v6EndLo.push(end & MASK_64);
    this.#v6Value.push(value);
  }

  build(): IntervalTable {
    let v4Start = this.#v4Start.done();
    let v4End = this.#v4End.done();
    let v4Value = this.#v4Value.done();
    let sortedV4 = true;
    for (let i = 1; i < v4Start.length && sortedV4; i++)
      sortedV4 = (v4Start[i - 1] ?? 0) <= (v4Start[i] ?? 0);
    if (!sortedV4) {
      const order = Array.from(v4Start.keys()).sort((a, b) => (v4Start[a] ?? 0) - (v4Start[b] ?? 0));
      const [s, e, v] = [v4Start, v4End, v4Value];
      v4Start = Uint32Array.from(order, (i) => s[i] ?? 0);
      v4End = Uint32Array.from(order, (i) => e[i] ?? 0);
      v4Value = Uint32Array.from(order, (i) => v[i] ?? 0);
    }
    let startHi = this.#v6StartHi.done();
    let startLo = this.#v6StartLo.done();
    let endHi = this.#v6EndHi.done();
    let endLo = this.#v6EndLo.done();
    let v6Value = this.#v6Value.done();
    const before = (a: number, b: number) => {
      const ha = startHi[a] ?? 0n;
      const hb = startHi[b] ?? 0n;
      if (ha !== hb) return ha < hb ? -1 : 1;
      const la = startLo[a] ?? 0n;
      const lb = startLo[b] ?? 0n;
      return la < lb ? -1 : la > lb ? 1 : 0;
    };
    let sortedV6 = true;
    for (let i = 1; i < startHi.length && sortedV6; i++) sortedV6 = before(i - 1, i) <= 0;
    if (!sortedV6) {
      const order = Array.from(startHi.keys()).sort(before);
      const [sh, sl, eh, el, v] = [startHi, startLo, endHi, endLo, v6Value];
      startHi = BigUint64Array.from(order, (i) => sh[i] ?? 0n);
      startLo = BigUint64Array.from(order, (i) => sl[i] ?? 0n);
      endHi = BigUint64Array.from(order, (i) => eh[i] ?? 0n);
      endLo = BigUint64Array.from(order, (i) => el[i] ?? 0n);
      v6Value = Uint32Array.from(order, (i) => v[i] ?? 0);
    }

    function findV4(ip: number): number {
      let low = 0;
      let high = v4Start.length - 1;
      let hit = -1;
      while (low <= high) {
        const mid = (low + high) >>> 1;
        if ((v4Start[mid] ?? 0) <= ip) {
          hit = mid;
          low = mid + 1;
        } else high = mid - 1;
      }
      return hit >= 0 && (v4End[hit] ?? 0) >= ip ? (v4Value[hit] ?? -1) : -1;
    }

    function findV6(hi: bigint, lo: bigint): number {
      let low = 0;
      let high = startHi.length - 1;
      let hit = -1;
      while (low <= high) {
        const mid = (low + high) >>> 1;
        const sh = startHi[mid] ?? 0n;
        if (sh < hi || (sh === hi && (startLo[mid] ?? 0n) <= lo)) {
          hit = mid;
          low = mid + 1;
        } else high = mid - 1;
      }
      if (hit < 0) return -1;
      const eh = endHi[hit] ?? 0n;
      return eh > hi || (eh === hi && (endLo[hit] ?? 0n) >= lo) ? (v6Value[hit] ?? -1) : -1;
    }

    return {
      size: v4Start.length + startHi.length,
      find(key: Uint8Array): number {
        if (key.length !== 16) return -1;
        const v4 = keyToV4(key);
        return v4 >= 0 ? findV4(v4) : findV6(readUint64(key, 0), readUint64(key, 8));
      },
    };
  }
}
