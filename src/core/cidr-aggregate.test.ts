import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  aggregate,
  buildRangeSet,
  cidrLineChunks,
  forEachCidr,
  RangeSetBuilder,
  subtract,
  toCidrs,
  toCidrTexts,
} from './cidr-aggregate.js';
import { parseIp } from './ip.js';

const texts = (entries: Iterable<string>) => aggregate(entries).map((cidr) => cidr.text);

function range(prefix: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i <= to; i++) out.push(`${prefix}${i}`);
  return out;
}

describe('aggregate', () => {
  it('collapses a fully listed /24 into one CIDR', () => {
    assert.deepEqual(texts(range('203.0.113.', 0, 255)), ['203.0.113.0/24']);
  });

  it('splits a /24 with one address missing into the exact minimal cover', () => {
    const listed = range('203.0.113.', 0, 255).filter((ip) => ip !== '203.0.113.77');
    assert.deepEqual(texts(listed), [
      '203.0.113.0/26',
      '203.0.113.64/29',
      '203.0.113.72/30',
      '203.0.113.76',
      '203.0.113.78/31',
      '203.0.113.80/28',
      '203.0.113.96/27',
      '203.0.113.128/25',
    ]);
  });

  it('accepts duplicates, unsorted input, whitespace and CIDRs, and merges overlaps', () => {
    assert.deepEqual(texts([' 10.0.0.3 ', '10.0.0.0/31', '10.0.0.2', '10.0.0.1', '10.0.0.0/30\r']), [
      '10.0.0.0/30',
    ]);
    assert.deepEqual(texts(['10.0.0.0/8', '10.1.2.3', '11.0.0.0/8']), ['10.0.0.0/7']);
  });

  it('clears host bits of CIDR inputs', () => {
    assert.deepEqual(texts(['192.0.2.77/24']), ['192.0.2.0/24']);
  });

  it('handles the ends of the IPv4 space', () => {
    assert.deepEqual(texts(['0.0.0.0/0']), ['0.0.0.0/0']);
    assert.deepEqual(texts(['255.255.255.255', '255.255.255.254']), ['255.255.255.254/31']);
    assert.deepEqual(texts(['0.0.0.0/1', '128.0.0.0/1']), ['0.0.0.0/0']);
  });

  it('collapses four IPv6 addresses into a /126', () => {
    assert.deepEqual(texts(['2001:db8::3', '2001:db8::1', '2001:db8::2', '2001:DB8::0']), ['2001:db8::/126']);
    assert.deepEqual(texts(['2001:db8::1', '2001:db8::2', '2001:db8::3']), [
      '2001:db8::1',
      '2001:db8::2/127',
    ]);
  });

  it('merges IPv6 CIDR inputs into a /64 and refuses to when part is missing', () => {
    assert.deepEqual(texts(['2a05:d014:ff:212::/65', '2a05:d014:ff:212:8000::/65']), [
      '2a05:d014:ff:212::/64',
    ]);
    assert.deepEqual(texts(['2a05:d014:ff:212::/65', '2a05:d014:ff:212:8000::/66']), [
      '2a05:d014:ff:212::/65',
      '2a05:d014:ff:212:8000::/66',
    ]);
    assert.deepEqual(texts(['2a05:d014:ff:212::/64', '2a05:d014:ff:212::5']), ['2a05:d014:ff:212::/64']);
  });

  it('keeps IPv4 first, then IPv6, and treats IPv4-mapped IPv6 as IPv4', () => {
    const result = aggregate(['2001:db8::1', '::ffff:198.51.100.1', '198.51.100.0']);
    assert.deepEqual(
      result.map((c) => [c.text, c.version, c.prefixLength, c.address]),
      [
        ['198.51.100.0/31', 4, 31, '198.51.100.0'],
        ['2001:db8::1', 6, 128, '2001:db8::1'],
      ],
    );
  });

  it('handles the whole IPv6 space', () => {
    assert.deepEqual(texts(['::/1', '8000::/1']), ['::/0']);
  });

  it('refuses junk unless told what to do with it', () => {
    assert.throws(() => aggregate(['1.2.3.4', 'not-an-ip']), RangeError);
    assert.throws(() => aggregate(['010.1.1.1']), RangeError);
    assert.throws(() => aggregate(['1.2.3.4/33']), RangeError);
    const invalid: string[] = [];
    const result = aggregate(['1.2.3.4', 'bad', '1.2.3', ''], { onInvalid: (entry) => invalid.push(entry) });
    assert.deepEqual(
      result.map((c) => c.text),
      ['1.2.3.4'],
    );
    assert.deepEqual(invalid, ['bad', '1.2.3', '']);
  });

  it('takes 16-byte keys from ip.ts', () => {
    const builder = new RangeSetBuilder();
    for (const text of ['45.83.0.0', '45.83.0.1', '2a05:d014:ff:212::']) {
      const parsed = parseIp(text);
      assert.ok(parsed.ok);
      builder.addKey(parsed.ip.key);
    }
    const v6 = parseIp('2a05:d014:ff:212::');
    assert.ok(v6.ok);
    builder.addKey(v6.ip.key, 64);
    assert.deepEqual(
      toCidrs(builder.build()).map((c) => c.text),
      ['45.83.0.0/31', '2a05:d014:ff:212::/64'],
    );
  });
});

describe('toCidrTexts and forEachCidr', () => {
  it('give the same cover as toCidrs', () => {
    const set = buildRangeSet(['45.83.0.0/24', '45.83.1.0', '2a05:d014:ff:212::/64', '2a05:d014:ff:213::1']);
    assert.deepEqual(toCidrTexts(set), [
      '45.83.0.0/24',
      '45.83.1.0',
      '2a05:d014:ff:212::/64',
      '2a05:d014:ff:213::1',
    ]);
    const visited: Array<[string, string, number, number]> = [];
    forEachCidr(set, (text, address, prefixLength, version) =>
      visited.push([text, address, prefixLength, version]),
    );
    assert.deepEqual(
      visited,
      toCidrs(set).map((c) => [c.text, c.address, c.prefixLength, c.version]),
    );
  });
});

describe('cidrLineChunks', () => {
  const lines = (set: ReturnType<typeof buildRangeSet>, per?: number) => [...cidrLineChunks(set, per)];

  it('writes exactly toCidrTexts, one per line, for v4 ends, wide blocks and IPv6', () => {
    const set = buildRangeSet(['0.0.0.0/0', '2a05:d014:ff:212::/64', '2a05:d014:ff:213::1', '::/0']);
    assert.equal(lines(set).join(''), `${toCidrTexts(set).join('\n')}\n`);
    const edges = buildRangeSet(['0.0.0.0', '9.9.9.9', '10.0.0.0/8', '100.100.100.100', '255.255.255.255']);
    assert.equal(lines(edges).join(''), '0.0.0.0\n9.9.9.9\n10.0.0.0/8\n100.100.100.100\n255.255.255.255\n');
    assert.deepEqual(lines(buildRangeSet([])), []);
  });

  it('cuts chunks at line ends and matches toCidrTexts on random sets', () => {
    const random = mulberry32(11);
    for (let round = 0; round < 200; round++) {
      const entries: string[] = [];
      const n = 1 + Math.floor(random() * 60);
      for (let i = 0; i < n; i++) {
        const octets = [
          1 + Math.floor(random() * 254),
          Math.floor(random() * 4),
          0,
          Math.floor(random() * 256),
        ];
        const kind = random();
        if (kind < 0.2) entries.push(`2001:db8::${Math.floor(random() * 4096).toString(16)}`);
        else if (kind < 0.4) entries.push(`${octets.join('.')}/${24 + Math.floor(random() * 9)}`);
        else entries.push(octets.join('.'));
      }
      const set = buildRangeSet(entries);
      const per = 1 + Math.floor(random() * 5);
      const chunks = lines(set, per);
      const expected = toCidrTexts(set);
      assert.equal(chunks.join(''), `${expected.join('\n')}\n`, `round ${round}`);
      for (const chunk of chunks) assert.ok(chunk.endsWith('\n'), `round ${round}`);
      const v4Lines = expected.filter((t) => !t.includes(':')).length;
      const v4Chunks = chunks.filter((c) => !c.includes(':'));
      assert.equal(v4Chunks.length, Math.ceil(v4Lines / per), `round ${round}`);
    }
  });
});

describe('RangeSetBuilder.addAll', () => {
  it('adds like add() one by one, skipping junk', () => {
    const entries = [
      '1.2.3.4',
      '1.2.3.5',
      '10.0.0.0/8',
      '2001:db8::1',
      '::ffff:1.2.3.6',
      'junk',
      '',
      '01.2.3.4',
    ];
    // Edges of the dotted-quad fast parse: each must land exactly where add() puts it.
    const edges = ['0.0.0.0', '255.255.255.255', '256.1.1.1', '1.2.3', '1.2.3.4.5', '1..2.3', ' 9.9.9.9 '];
    const more = ['1.2.3.04', '100.200.10.0', '100.200.10.1', '1.2.3.00', '7.7.7.7/32', '123.123.123.1234'];
    for (const list of [edges, more, entries]) {
      const a = new RangeSetBuilder();
      for (const entry of list) a.add(entry);
      const b = new RangeSetBuilder();
      b.addAll(list);
      assert.deepEqual(toCidrTexts(b.build()), toCidrTexts(a.build()), list.join(' '));
      // addLines takes the same entries as one text (an empty line adds nothing, as with add('')).
      const c = new RangeSetBuilder();
      c.addLines(list.join('\n'));
      assert.deepEqual(toCidrTexts(c.build()), toCidrTexts(a.build()), list.join(' '));
    }
    const one = new RangeSetBuilder();
    for (const entry of entries) one.add(entry);
    const all = new RangeSetBuilder();
    all.addAll(entries);
    assert.deepEqual(toCidrTexts(all.build()), toCidrTexts(one.build()));
    assert.deepEqual(toCidrTexts(all.build()), ['1.2.3.4/31', '1.2.3.6', '10.0.0.0/8', '2001:db8::1']);
  });
});

describe('subtract', () => {
  it('punches an allowlisted address out of a range', () => {
    assert.deepEqual(
      subtract(['45.83.0.0/30'], ['45.83.0.1']).map((c) => c.text),
      ['45.83.0.0', '45.83.0.2/31'],
    );
  });

  it('removes whole ranges, private space and IPv6', () => {
    assert.deepEqual(
      subtract(
        ['10.0.0.1', '10.0.0.2', '45.83.0.9', '192.168.1.0/24', '2a05:d014:ff:212::/64', '2001:db8::1'],
        ['10.0.0.0/8', '192.168.0.0/16', '2a05:d014:ff:212:8000::/65'],
      ).map((c) => c.text),
      ['45.83.0.9', '2001:db8::1', '2a05:d014:ff:212::/65'],
    );
  });

  it('returns the list unchanged when nothing overlaps, and nothing when everything does', () => {
    assert.deepEqual(
      subtract(['1.2.3.0/24'], ['1.2.4.0/24']).map((c) => c.text),
      ['1.2.3.0/24'],
    );
    assert.deepEqual(subtract(['1.2.3.0/24', '::/0'], ['0.0.0.0/0', '::/0']), []);
  });
});

// Small deterministic PRNG so a failure is reproducible from the printed seed.
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Reference: the canonical minimal cover is exactly the set of maximal aligned blocks contained in the
 * address set. Computed bottom-up by merging sibling blocks, a different algorithm from the one under test.
 */
function referenceCover(addresses: Set<number>, bits: number): string[] {
  let level = new Set(addresses);
  const result: Array<[number, number]> = [];
  for (let hostBits = 0; hostBits <= bits; hostBits++) {
    const next = new Set<number>();
    const size = 2 ** hostBits;
    for (const start of level) {
      const parentSize = size * 2;
      const parent = start - (start % parentSize);
      const sibling = parent === start ? start + size : parent;
      if (hostBits < bits && level.has(sibling)) next.add(parent);
      else result.push([start, hostBits]);
    }
    level = next;
  }
  return result
    .sort((a, b) => a[0] - b[0])
    .map(([start, hostBits]) => {
      const value = 0x2d530000 + start; // inside 45.83.0.0/16
      const address = `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
      return hostBits === 0 ? address : `${address}/${32 - hostBits}`;
    });
}

describe('aggregate against a brute-force reference', () => {
  it('matches on random small sets (union equal, no overlap, minimal)', () => {
    const seed = 20260315;
    const random = mulberry32(seed);
    const bits = 8; // a 256-address universe inside 45.83.0.0/24
    for (let round = 0; round < 400; round++) {
      const addresses = new Set<number>();
      const entries: string[] = [];
      const density = random();
      for (let i = 0; i < 40; i++) {
        // Mix single addresses and small CIDRs.
        const hostBits = random() < 0.7 ? 0 : Math.floor(random() * 5);
        const size = 2 ** hostBits;
        const start = Math.floor((random() * 256) / size) * size;
        if (random() > density) continue;
        for (let a = start; a < start + size; a++) addresses.add(a);
        entries.push(hostBits === 0 ? `45.83.0.${start}` : `45.83.0.${start}/${32 - hostBits}`);
      }
      const result = aggregate(entries);
      const expected = referenceCover(addresses, bits);
      assert.deepEqual(
        result.map((c) => c.text),
        expected,
        `seed ${seed} round ${round}`,
      );
      // Union equality and no overlap, checked directly on addresses.
      const covered = new Set<number>();
      for (const cidr of result) {
        const last = Number(cidr.address.split('.')[3]);
        const size = 2 ** (32 - cidr.prefixLength);
        for (let a = last; a < last + size; a++) {
          assert.ok(!covered.has(a), `overlap at ${a}`);
          covered.add(a);
        }
      }
      assert.deepEqual(
        [...covered].sort((x, y) => x - y),
        [...addresses].sort((x, y) => x - y),
      );
    }
  });

  it('subtract matches set difference on random small sets', () => {
    const random = mulberry32(7);
    for (let round = 0; round < 300; round++) {
      const listed = new Set<number>();
      const excluded = new Set<number>();
      const listEntries: string[] = [];
      const excludedEntries: string[] = [];
      for (let i = 0; i < 30; i++) {
        const hostBits = Math.floor(random() * 4);
        const size = 2 ** hostBits;
        const start = Math.floor((random() * 256) / size) * size;
        const target = random() < 0.6 ? listed : excluded;
        for (let a = start; a < start + size; a++) target.add(a);
        (target === listed ? listEntries : excludedEntries).push(`45.83.0.${start}/${32 - hostBits}`);
      }
      const difference = new Set([...listed].filter((a) => !excluded.has(a)));
      assert.deepEqual(
        subtract(listEntries, excludedEntries).map((c) => c.text),
        referenceCover(difference, 8),
        `round ${round}`,
      );
    }
  });

  it('builds a RangeSet whose intervals are sorted, disjoint and non-adjacent', () => {
    const set = buildRangeSet(['1.0.0.5', '1.0.0.4', '1.0.0.7', '9.9.9.9', '2001:db8::1', '2001:db8::2']);
    assert.deepEqual([...set.v4], [16777220, 16777221, 16777223, 16777223, 151587081, 151587081]);
    assert.deepEqual(set.v6, [0x20010db8000000000000000000000001n, 0x20010db8000000000000000000000002n]);
  });
});
