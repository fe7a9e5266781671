import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BlacklistEntry, BlacklistMeta } from './blacklist-format.js';
import {
  AddressLines,
  BLACKLIST_FORMATS,
  csvField,
  formatBlacklist,
  ipsetHashsize,
  ipsetMaxelem,
  writeCsv,
  writeIpset,
  writeJson,
  writeNftables,
  writeNginx,
  writePlaintext,
} from './blacklist-format.js';

async function collect(chunks: AsyncIterable<string>): Promise<string> {
  let out = '';
  for await (const chunk of chunks) out += chunk;
  return out;
}

function entry(ip: string, overrides: Partial<BlacklistEntry> = {}): BlacklistEntry {
  return {
    ip,
    version: ip.includes(':') ? 6 : 4,
    confidenceLevel: 95,
    lastSeen: 1773530000000,
    sessions: 57,
    protocols: ['ssh', 'telnet'],
    countryCode: 'CN',
    asn: '4134',
    asnOrg: 'Chinanet',
    ...overrides,
  };
}

const meta: BlacklistMeta = {
  generatedAt: 1773532800000,
  scoreMinimum: 70,
  limit: 1000,
  count: 2,
  truncated: false,
};

describe('writeJson', () => {
  it('writes exactly the SPEC §3.2 shape', async () => {
    const text = await collect(
      writeJson([entry('203.0.113.42'), entry('2a05:d014:ff:212::/64', { asn: null })], meta),
    );
    assert.deepEqual(JSON.parse(text), {
      meta: { generatedAt: 1773532800000, scoreMinimum: 70, limit: 1000, count: 2, truncated: false },
      data: [
        {
          ip: '203.0.113.42',
          confidenceLevel: 95,
          lastSeen: 1773530000000,
          sessions: 57,
          protocols: ['ssh', 'telnet'],
          countryCode: 'CN',
          asn: '4134',
          asnOrg: 'Chinanet',
        },
        {
          ip: '2a05:d014:ff:212::/64',
          confidenceLevel: 95,
          lastSeen: 1773530000000,
          sessions: 57,
          protocols: ['ssh', 'telnet'],
          countryCode: 'CN',
          asn: null,
          asnOrg: 'Chinanet',
        },
      ],
    });
    assert.ok(text.startsWith('{"meta":{"generatedAt":1773532800000,'));
  });

  it('writes an empty list', async () => {
    assert.deepEqual(JSON.parse(await collect(writeJson([], { ...meta, count: 0 }))).data, []);
  });

  it('streams a large list in bounded chunks from an async source', async () => {
    async function* source() {
      for (let i = 0; i < 50_000; i++) yield entry(`45.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    }
    const chunks: string[] = [];
    for await (const chunk of writeJson(source(), { ...meta, count: 50_000 })) chunks.push(chunk);
    assert.ok(chunks.length > 10);
    assert.ok(chunks.every((chunk) => chunk.length < 70 * 1024));
    assert.equal(JSON.parse(chunks.join('')).data.length, 50_000);
  });
});

describe('writeCsv', () => {
  it('quotes fields per RFC 4180 and defuses formulas', async () => {
    const text = await collect(
      writeCsv([
        entry('203.0.113.42', { asnOrg: 'Evil "Corp", Ltd\r\nnext', protocols: ['ssh'], countryCode: null }),
        entry('203.0.113.43', { asnOrg: '=HYPERLINK("http://x")', protocols: ['-cmd', '@sum'] }),
      ]),
    );
    assert.equal(
      text,
      'ip,confidenceLevel,lastSeen,sessions,protocols,countryCode,asn,asnOrg\r\n' +
        '203.0.113.42,95,1773530000000,57,ssh,,4134,"Evil ""Corp"", Ltd\r\nnext"\r\n' +
        `203.0.113.43,95,1773530000000,57,"'-cmd|@sum",CN,4134,"'=HYPERLINK(""http://x"")"\r\n`,
    );
  });

  it('leaves plain values alone', () => {
    assert.equal(csvField('Chinanet'), 'Chinanet');
    assert.equal(csvField(42), '42');
    assert.equal(csvField(null), '');
    assert.equal(csvField('+1'), `"'+1"`);
  });
});

describe('writePlaintext and writeNginx', () => {
  it('writes one entry per line', async () => {
    assert.equal(
      await collect(writePlaintext([entry('203.0.113.42'), entry('45.83.0.0/24')])),
      '203.0.113.42\n45.83.0.0/24\n',
    );
    assert.equal(await collect(writePlaintext([])), '');
  });

  it('writes nginx geo lines', async () => {
    const text = await collect(writeNginx([entry('203.0.113.42'), entry('2a05:d014:ff:212::/64')], meta));
    assert.deepEqual(text.split('\n').slice(1), ['203.0.113.42 1;', '2a05:d014:ff:212::/64 1;', '']);
    assert.match(text, /^# Vakt blacklist, generated 2026-03-15T00:00:00.000Z/);
  });

  it('refuses entries that are not addresses instead of writing them into a script', async () => {
    for (const ip of ['1.2.3.4\nflush', '1.2.3.4 }', 'evil', '2001:db8::1']) {
      await assert.rejects(collect(writeNginx([entry(ip, { version: 4 })], meta)), RangeError, ip);
    }
    await assert.rejects(collect(writeNftables([entry('1.2.3.4', { version: 6 })], meta)), RangeError);
  });
});

describe('writeIpset', () => {
  it('sizes maxelem from the content with a stable floor, and hashsize in powers of two', () => {
    assert.equal(ipsetMaxelem(70_000), 1 << 20);
    assert.equal(ipsetMaxelem(70_000, 65536), 131072);
    assert.equal(ipsetMaxelem(900_000), 1 << 21);
    assert.equal(ipsetMaxelem(0, 65536), 65536);
    assert.equal(ipsetHashsize(10), 1024);
    assert.equal(ipsetHashsize(70_000), 32768);
  });

  it('creates live sets first, fills temp sets, swaps and destroys them', async () => {
    const text = await collect(
      writeIpset([entry('203.0.113.42'), entry('2a05:d014:ff:212::/64'), entry('45.83.0.0/24')], meta),
    );
    const lines = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    const temp4 = 'vakt-v4-tqzmyo0';
    const temp6 = 'vakt-v6-tqzmyo0';
    assert.deepEqual(lines, [
      'create vakt-v4 hash:net family inet hashsize 1024 maxelem 1048576 -exist',
      'create vakt-v6 hash:net family inet6 hashsize 1024 maxelem 1048576 -exist',
      `create ${temp4} hash:net family inet hashsize 1024 maxelem 1048576 -exist`,
      `flush ${temp4}`,
      `create ${temp6} hash:net family inet6 hashsize 1024 maxelem 1048576 -exist`,
      `flush ${temp6}`,
      `add ${temp4} 203.0.113.42 -exist`,
      `add ${temp6} 2a05:d014:ff:212::/64 -exist`,
      `add ${temp4} 45.83.0.0/24 -exist`,
      `swap ${temp4} vakt-v4`,
      `destroy ${temp4}`,
      `swap ${temp6} vakt-v6`,
      `destroy ${temp6}`,
    ]);
  });

  it('never flushes, deletes from or destroys a live set', async () => {
    const text = await collect(
      writeIpset([entry('203.0.113.42')], meta, { v4SetName: 'block4', v6SetName: 'block6' }),
    );
    for (const line of text.split('\n')) {
      const [command, name] = line.split(' ');
      if (command === 'flush' || command === 'destroy' || command === 'del' || command === 'add') {
        assert.notEqual(name, 'block4', line);
        assert.notEqual(name, 'block6', line);
      }
    }
  });

  it('can leave the live sets to the caller, honours names and per-family counts', async () => {
    const text = await collect(
      writeIpset([], meta, {
        createLiveSets: false,
        v4SetName: 'a-very-long-set-name-of-31-char',
        v4Count: 3_000_000,
        v6Count: 10,
      }),
    );
    assert.doesNotMatch(text, /create a-very-long-set-name-of-31-char /);
    assert.match(
      text,
      /create a-very-long-set-name-of-tqzmyo0 hash:net family inet hashsize 1048576 maxelem 4194304/,
    );
    assert.match(text, /family inet6 hashsize 1024 maxelem 1048576/);
  });

  it('refuses bad set names and splits a /0', async () => {
    await assert.rejects(collect(writeIpset([], meta, { v4SetName: 'x'.repeat(32) })), RangeError);
    await assert.rejects(collect(writeIpset([], meta, { v4SetName: 'bad name' })), RangeError);
    await assert.rejects(collect(writeIpset([], meta, { v4SetName: 'same', v6SetName: 'same' })), RangeError);
    const text = await collect(writeIpset([entry('0.0.0.0/0')], meta));
    assert.match(
      text,
      /add vakt-v4-tqzmyo0 0\.0\.0\.0\/1 -exist\nadd vakt-v4-tqzmyo0 128\.0\.0\.0\/1 -exist/,
    );
  });
});

describe('writeNftables', () => {
  it('replaces the inet table and routes entries to plain and interval sets', async () => {
    const text = await collect(
      writeNftables(
        [
          entry('45.83.0.0/24'),
          entry('203.0.113.42'),
          entry('203.0.113.43/32'),
          entry('2a05:d014:ff:212::/64'),
          entry('2a05:d014:ff:212::5'),
        ],
        meta,
        { table: 'guard', priority: -50 },
      ),
    );
    const lines = text.split('\n');
    assert.deepEqual(lines.slice(1, 4), [
      'table inet guard {}',
      'delete table inet guard',
      'table inet guard {',
    ]);
    assert.ok(lines.includes('    type filter hook input priority -50; policy accept;'));
    assert.ok(lines.includes('add element inet guard v4 { 203.0.113.42, 203.0.113.43 }'));
    assert.ok(lines.includes('add element inet guard v4net { 45.83.0.0/24 }'));
    assert.ok(lines.includes('add element inet guard v6 { 2a05:d014:ff:212::5 }'));
    assert.ok(lines.includes('add element inet guard v6net { 2a05:d014:ff:212::/64 }'));
    assert.doesNotMatch(text, /table ip /);
  });

  it('declares empty sets without an elements clause', async () => {
    const text = await collect(writeNftables([], { ...meta, count: 0 }));
    assert.doesNotMatch(text, /add element|elements/);
    assert.match(text, /set v6net \{\n {4}type ipv6_addr\n {4}flags interval\n {4}auto-merge\n {2}\}/);
  });

  it('batches elements', async () => {
    const rows = Array.from({ length: 2500 }, (_, i) => entry(`45.83.${i >> 8}.${i & 255}`));
    const text = await collect(writeNftables(rows, meta));
    assert.equal(text.match(/^add element inet vakt v4 /gm)?.length, 3);
  });

  it('refuses bad table names and priorities', async () => {
    await assert.rejects(collect(writeNftables([], meta, { table: 'a b' })), RangeError);
    await assert.rejects(collect(writeNftables([], meta, { priority: 1.5 })), RangeError);
  });
});

describe('formatBlacklist', () => {
  it('dispatches every format', async () => {
    for (const format of BLACKLIST_FORMATS) {
      const text = await collect(formatBlacklist(format, [entry('203.0.113.42')], { meta }));
      assert.match(text, /203\.0\.113\.42/, format);
    }
  });
});

describe('AddressLines input', () => {
  // Address-only entries as the blacklist service's generic path builds them (no details).
  const bare = (ip: string): BlacklistEntry =>
    entry(ip, {
      confidenceLevel: 0,
      lastSeen: 0,
      sessions: 0,
      protocols: [],
      countryCode: null,
      asn: null,
      asnOrg: null,
    });
  const list = [
    '203.0.113.42',
    '45.83.0.0/24',
    '2a05:d014:ff:212::5',
    '0.0.0.0/0',
    '2001:db8::/126',
    '::/0',
    '8.8.8.8',
  ];
  async function* pages(lines: readonly string[], size: number) {
    for (let i = 0; i < lines.length; i += size) {
      yield new AddressLines(
        lines
          .slice(i, i + size)
          .map((ip) => `${ip}\n`)
          .join(''),
      );
    }
  }
  async function* entryPages(lines: readonly string[], size: number) {
    for (let i = 0; i < lines.length; i += size) yield lines.slice(i, i + size).map(bare);
  }

  it('writes every format byte for byte as the same entries would, whatever the page size', async () => {
    for (const format of BLACKLIST_FORMATS) {
      for (const size of [1, 3, 100]) {
        assert.equal(
          await collect(formatBlacklist(format, pages(list, size), { meta })),
          await collect(formatBlacklist(format, entryPages(list, size), { meta })),
          `${format} / ${size}`,
        );
      }
      assert.equal(
        await collect(formatBlacklist(format, pages([], 5), { meta })),
        await collect(formatBlacklist(format, [], { meta })),
        format,
      );
    }
  });

  it('refuses pages holding anything but address lines instead of writing them into a script', async () => {
    for (const text of [
      '1.2.3.4 }\n',
      '1.2.3.4\nflush vakt\n',
      '1.2.3.4;\n',
      '\n1.2.3.4\n',
      '1.2.3.4\n\n5.6.7.8\n',
      '1.2.3.4',
      '1.2.3.4\r\n',
    ]) {
      for (const format of BLACKLIST_FORMATS) {
        const source = async function* () {
          yield new AddressLines(text);
        };
        await assert.rejects(collect(formatBlacklist(format, source(), { meta })), RangeError, text);
      }
    }
  });
});
