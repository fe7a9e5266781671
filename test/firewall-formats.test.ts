// Loads the ipset and nftables blacklist formats into the real tools inside a throw-away network namespace
// (cases 007 and 008). Needs root and `apt-get install -y ipset iptables nftables iproute2`; skips otherwise.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BlacklistEntry, BlacklistMeta } from '../src/core/blacklist-format.js';
import { writeIpset, writeNftables } from '../src/core/blacklist-format.js';
import { aggregate } from '../src/core/cidr-aggregate.js';

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with an argument array (never a shell string), optionally feeding stdin. */
function run(command: string, args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 127) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.on('error', () => {}); // a failing command may close stdin early
    child.stdin?.end(input ?? '');
  });
}

async function mustRun(command: string, args: readonly string[], input?: string): Promise<string> {
  const result = await run(command, args, input);
  assert.equal(result.code, 0, `${command} ${args.join(' ')} failed: ${result.stderr.slice(0, 2000)}`);
  return result.stdout;
}

const namespace = `vakt-test-${randomBytes(4).toString('hex')}`;

/** Creates the namespace; returns a skip reason when this machine cannot (no root, tools missing). */
async function setUp(): Promise<string | null> {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  for (const tool of ['ip', 'ipset', 'iptables', 'ip6tables', 'nft']) {
    const found = await run('sh', ['-c', 'command -v "$1"', 'sh', tool]);
    if (found.code !== 0) {
      return `${tool} is not installed (apt-get install -y ipset iptables nftables iproute2)`;
    }
  }
  const created = await run('ip', ['netns', 'add', namespace]);
  if (created.code !== 0) return `cannot create a network namespace (needs root): ${created.stderr.trim()}`;
  return null;
}

const skipReason = await setUp();
if (skipReason) console.log(`firewall-formats: skipped — ${skipReason}`);

const inNamespace = (command: string, args: readonly string[], input?: string) =>
  run('ip', ['netns', 'exec', namespace, command, ...args], input);
const mustInNamespace = (command: string, args: readonly string[], input?: string) =>
  mustRun('ip', ['netns', 'exec', namespace, command, ...args], input);

function entry(ip: string): BlacklistEntry {
  return {
    ip,
    version: ip.includes(':') ? 6 : 4,
    confidenceLevel: 90,
    lastSeen: 1773530000000,
    sessions: 1,
    protocols: ['ssh'],
    countryCode: null,
    asn: null,
    asnOrg: null,
  };
}

async function collect(chunks: AsyncIterable<string>): Promise<string> {
  let out = '';
  for await (const chunk of chunks) out += chunk;
  return out;
}

/** `count` distinct single IPv4 addresses starting at firstOctet.80.0.0 (public space, never aggregated). */
function v4Addresses(firstOctet: number, count: number): string[] {
  return Array.from(
    { length: count },
    (_, i) => `${firstOctet}.${80 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
  );
}

function v6Addresses(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${(i + 1).toString(16)}`);
}

async function entryCount(set: string): Promise<number> {
  const out = await mustInNamespace('ipset', ['list', '-t', set]);
  const match = /Number of entries: (\d+)/.exec(out);
  assert.ok(match, `no entry count in: ${out}`);
  return Number(match[1]);
}

async function setNames(): Promise<string[]> {
  return (await mustInNamespace('ipset', ['list', '-n'])).split('\n').filter(Boolean).sort();
}

describe('firewall formats against the real tools', { skip: skipReason ?? false }, () => {
  const scratch = mkdtempSync(join(tmpdir(), 'vakt-fw-'));

  before(async () => {
    // Loopback up is not needed for set operations, but keeps the namespace realistic.
    await mustRun('ip', ['netns', 'exec', namespace, 'ip', 'link', 'set', 'lo', 'up']);
  });

  after(async () => {
    rmSync(scratch, { recursive: true, force: true });
    await run('ip', ['netns', 'del', namespace]);
  });

  describe('ipset (case 007)', () => {
    const liveV4 = 'vakt-v4';
    const liveV6 = 'vakt-v6';

    async function script(v4: string[], v6: string[], generatedAt: number): Promise<string> {
      const meta: BlacklistMeta = {
        generatedAt,
        scoreMinimum: 50,
        limit: 350_000,
        count: v4.length + v6.length,
        truncated: false,
      };
      const rows = [...v4, ...v6].map(entry);
      return collect(writeIpset(rows, meta, { v4Count: v4.length, v6Count: v6.length }));
    }

    it('loads 70,000 v4 + 300 v6 twice while iptables uses the set; never empty or missing', async () => {
      const first = await script(
        v4Addresses(45, 70_000),
        v6Addresses('2a05:d014:ff:212::', 300),
        1773532800000,
      );
      await mustInNamespace('ipset', ['restore'], first);
      assert.equal(await entryCount(liveV4), 70_000);
      assert.equal(await entryCount(liveV6), 300);
      assert.deepEqual(await setNames(), [liveV4, liveV6]);

      await mustInNamespace('iptables', [
        '-I',
        'INPUT',
        '-m',
        'set',
        '--match-set',
        liveV4,
        'src',
        '-j',
        'DROP',
      ]);
      await mustInNamespace('ip6tables', [
        '-I',
        'INPUT',
        '-m',
        'set',
        '--match-set',
        liveV6,
        'src',
        '-j',
        'DROP',
      ]);

      // Second load with different content, while another process polls the live set (bounded loop).
      const second = await script(
        v4Addresses(46, 70_000),
        v6Addresses('2a05:d014:ff:213::', 300),
        1773619200000,
      );
      const stopFile = join(scratch, 'stop-polling');
      const poller: ChildProcess = spawn(
        'ip',
        [
          'netns',
          'exec',
          namespace,
          'sh',
          '-c',
          'i=0; while [ ! -e "$2" ] && [ "$i" -lt 20000 ]; do ' +
            'n=$(ipset list -t "$1" 2>/dev/null | sed -n "s/^Number of entries: //p"); ' +
            'if [ -z "$n" ]; then n=MISSING; fi; echo "$n"; i=$((i+1)); done',
          'sh',
          liveV4,
          stopFile,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const samples: string[] = [];
      let partial = '';
      let firstSample: () => void = () => {};
      const started = new Promise<void>((resolve) => {
        firstSample = resolve;
      });
      poller.stdout?.on('data', (data: Buffer) => {
        const lines = (partial + data.toString()).split('\n');
        partial = lines.pop() ?? '';
        samples.push(...lines);
        if (samples.length > 0) firstSample();
      });
      const exited = new Promise<number | null>((resolve) => poller.on('exit', resolve));
      await started;
      const before = samples.length;
      await mustInNamespace('ipset', ['restore'], second);
      const during = samples.length - before;
      writeFileSync(stopFile, '');
      await exited;

      assert.ok(samples.length > 0);
      const bad = samples.filter((sample) => sample !== '70000');
      assert.deepEqual(bad, [], `live set was ${bad[0]} at some point (${samples.length} samples)`);
      assert.ok(during >= 1, `the poller took no sample while ipset restore ran (${samples.length} in all)`);
      console.log(
        `${samples.length} polls, ${during} of them during the second restore, all saw 70000 entries`,
      );

      assert.equal(await entryCount(liveV4), 70_000);
      assert.equal(await entryCount(liveV6), 300);
      // The new content is live, the old is gone.
      assert.equal((await inNamespace('ipset', ['test', liveV4, '46.81.10.5'])).code, 0);
      assert.notEqual((await inNamespace('ipset', ['test', liveV4, '45.81.10.5'])).code, 0);
      assert.equal((await inNamespace('ipset', ['test', liveV6, '2a05:d014:ff:213::12c'])).code, 0);
      // No temp set left; the iptables rules still reference the live sets.
      assert.deepEqual(await setNames(), [liveV4, liveV6]);
      assert.match(await mustInNamespace('iptables', ['-S', 'INPUT']), /--match-set vakt-v4 src -j DROP/);
    });

    it('a third load of a different size still works against the existing live sets', async () => {
      const third = await script(v4Addresses(47, 1_000), [], 1773705600000);
      await mustInNamespace('ipset', ['restore'], third);
      assert.equal(await entryCount(liveV4), 1_000);
      assert.equal(await entryCount(liveV6), 0);
      assert.deepEqual(await setNames(), [liveV4, liveV6]);
    });

    it('by construction, only swaps touch the live sets', async () => {
      const text = await script(v4Addresses(45, 10), v6Addresses('2a05:d014:ff:212::', 2), 1773532800000);
      const commands = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
      const touching = commands.filter((line) =>
        line
          .split(' ')
          .slice(1, 3)
          .some((w) => w === liveV4 || w === liveV6),
      );
      // Live sets: created only if missing (-exist), then only ever the target of a swap.
      assert.ok(
        touching.every((line) => /^create \S+ hash:net .* -exist$/.test(line) || line.startsWith('swap ')),
      );
      const swapIndex = commands.findIndex((line) => line.startsWith('swap '));
      const lastAdd = commands.findLastIndex((line) => line.startsWith('add '));
      assert.ok(lastAdd < swapIndex, 'every entry is added before the first swap');
      const temps = commands.filter((line) => line.startsWith('flush ')).map((line) => line.split(' ')[1]);
      for (const temp of temps) assert.ok(commands.includes(`destroy ${temp}`), `${temp} is destroyed`);
    });
  });

  describe('nftables (case 008)', () => {
    const file = (name: string) => join(scratch, name);

    async function nftFile(ips: string[], name: string): Promise<string> {
      const cidrs = aggregate(ips);
      const meta: BlacklistMeta = {
        generatedAt: 1773532800000,
        scoreMinimum: 50,
        limit: 10_000,
        count: ips.length,
        truncated: false,
      };
      const text = await collect(
        writeNftables(
          cidrs.map((cidr) => entry(cidr.text)),
          meta,
        ),
      );
      const path = file(name);
      writeFileSync(path, text);
      return path;
    }

    // 45.83.0.0/24 comes from aggregating its 256 addresses; the /64 is a CIDR input.
    const listed = [
      ...Array.from({ length: 256 }, (_, i) => `45.83.0.${i}`),
      '2a05:d014:ff:212::/64',
      // Every other address, so that these stay single addresses after aggregation.
      ...Array.from({ length: 3_000 }, (_, i) => `51.80.${i >> 7}.${(i & 127) * 2}`),
      ...v6Addresses('2a05:d014:ff:300::', 200),
    ];

    it('passes nft -c, loads twice, and finds CIDR members with nft get element', async () => {
      const path = await nftFile(listed, 'blacklist.nft');
      await mustInNamespace('nft', ['-c', '-f', path]);
      for (let load = 0; load < 2; load++) {
        await mustInNamespace('nft', ['-f', path]);
        await mustInNamespace('nft', ['get', 'element', 'inet', 'vakt', 'v4net', '{ 45.83.0.77 }']);
        await mustInNamespace('nft', ['get', 'element', 'inet', 'vakt', 'v6net', '{ 2a05:d014:ff:212::5 }']);
        await mustInNamespace('nft', ['get', 'element', 'inet', 'vakt', 'v4', '{ 51.80.23.110 }']);
        await mustInNamespace('nft', ['get', 'element', 'inet', 'vakt', 'v6', '{ 2a05:d014:ff:300::c8 }']);
        assert.notEqual(
          (await inNamespace('nft', ['get', 'element', 'inet', 'vakt', 'v4net', '{ 45.83.1.1 }'])).code,
          0,
        );
      }
      // IPv6 sets live in the inet table; nothing of ours in an `ip` or `ip6` table (the iptables-nft
      // `filter` tables come from the ipset test in the same namespace).
      const tables = (await mustInNamespace('nft', ['list', 'tables'])).trim().split('\n');
      assert.ok(tables.includes('table inet vakt'));
      assert.deepEqual(
        tables.filter((table) => table.endsWith(' vakt')),
        ['table inet vakt'],
      );
      const ruleset = await mustInNamespace('nft', ['list', 'table', 'inet', 'vakt']);
      assert.match(ruleset, /set v6net \{\s+type ipv6_addr\s+flags interval/);
      assert.match(ruleset, /ip6 saddr @v6net drop/);
    });

    it('replaces the table: entries dropped from the list disappear', async () => {
      const path = await nftFile(['45.83.0.0/25', '51.80.0.1'], 'smaller.nft');
      await mustInNamespace('nft', ['-f', path]);
      assert.notEqual(
        (await inNamespace('nft', ['get', 'element', 'inet', 'vakt', 'v4net', '{ 45.83.0.200 }'])).code,
        0,
      );
      await mustInNamespace('nft', ['get', 'element', 'inet', 'vakt', 'v4net', '{ 45.83.0.77 }']);
      assert.notEqual(
        (await inNamespace('nft', ['get', 'element', 'inet', 'vakt', 'v6net', '{ 2a05:d014:ff:212::5 }']))
          .code,
        0,
      );
    });

    it('loads thousands of adjacent intervals interleaved with single addresses (fresh-user report)', async () => {
      // x.y.z.2/31 and x.y.z.4/30 touch but are not one CIDR: auto-merge joins them into one range,
      // which failed when the two halves sat in different `add element` statements.
      // One lone /24 first, so that pairs straddle the old 1,000-element statement boundaries.
      const adjacent: string[] = Array.from({ length: 256 }, (_, i) => `52.79.0.${i}`);
      for (let i = 0; i < 1_500; i++) {
        const base = `52.${80 + (i >> 8)}.${i & 255}`;
        adjacent.push(
          `${base}.2`,
          `${base}.3`,
          `${base}.4`,
          `${base}.5`,
          `${base}.6`,
          `${base}.7`,
          `${base}.9`,
        );
      }
      const path = await nftFile(adjacent, 'adjacent.nft');
      await mustInNamespace('nft', ['-c', '-f', path]);
      await mustInNamespace('nft', ['-f', path]);
      await mustInNamespace('nft', ['get', 'element', 'inet', 'vakt', 'v4net', '{ 52.85.200.6 }']);
      await mustInNamespace('nft', ['get', 'element', 'inet', 'vakt', 'v4', '{ 52.85.200.9 }']);
    });

    it('accepts an empty list and overlapping CIDRs', async () => {
      await mustInNamespace('nft', ['-c', '-f', await nftFile([], 'empty.nft')]);
      const meta: BlacklistMeta = { generatedAt: 0, scoreMinimum: 50, limit: 10, count: 3, truncated: false };
      const overlapping = await collect(
        writeNftables(
          [entry('45.83.0.0/16'), entry('45.83.0.0/24'), entry('45.83.0.5'), entry('45.83.0.5')],
          meta,
        ),
      );
      writeFileSync(file('overlap.nft'), overlapping);
      await mustInNamespace('nft', ['-f', file('overlap.nft')]);
      await mustInNamespace('nft', ['get', 'element', 'inet', 'vakt', 'v4net', '{ 45.83.200.1 }']);
    });
  });
});
