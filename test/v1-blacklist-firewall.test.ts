// The blacklist route's ipset and nftables outputs loaded with the real tools in a throw-away namespace (cases 007, 008).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { importFeed } from '../src/ingest/feed-import.js';
import { createNamespace, type Namespace } from './helpers/netns.js';
import { seedReputations, v4Range } from './helpers/seed-reputations.js';
import { bearer, createTestApp, type TestApp } from './helpers/test-app.js';

const namespace = await createNamespace(['ipset', 'iptables', 'nft']);
const skip = typeof namespace === 'string' ? namespace : false;
if (skip) console.log(`v1-blacklist-firewall: skipped — ${skip}`);

describe('blacklist route into the real firewall tools', { skip }, () => {
  let t: TestApp;
  let key: string;
  let ns: Namespace;

  before(async () => {
    if (typeof namespace === 'string') return;
    ns = namespace;
    t = await createTestApp('sqlite');
    key = await t.key('unlimited');
    await seedReputations(t.store.db, [
      ...v4Range(45, 0, 70_000).map((ip) => ({ ip, score: 60 })),
      ...Array.from({ length: 300 }, (_, i) => ({
        ip: `2a05:d014:ff:212::${(i + 1).toString(16)}`,
        score: 60,
      })),
    ]);
  });
  after(async () => {
    await t?.close();
    if (typeof namespace !== 'string') await namespace.remove();
  });

  const count = async (set: string) =>
    Number(/Number of entries: (\d+)/.exec(await ns.must('ipset', ['list', '-t', set]))?.[1] ?? -1);

  it('loads 70,000 v4 + 300 v6 with ipset restore twice while iptables references the set (case 007)', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/v1/key/blacklist?format=ipset&scoreMinimum=50',
      headers: bearer(key),
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-daily-used'], '70300');
    await ns.must('ipset', ['restore'], res.body);
    assert.equal(await count('vakt-v4'), 70_000);
    assert.equal(await count('vakt-v6'), 300);
    await ns.must('iptables', ['-I', 'INPUT', '-m', 'set', '--match-set', 'vakt-v4', 'src', '-j', 'DROP']);
    const again = await t.app.inject({
      method: 'GET',
      url: '/v1/key/blacklist?format=ipset&scoreMinimum=50',
      headers: bearer(key),
    });
    await ns.must('ipset', ['restore'], again.body);
    assert.equal(await count('vakt-v4'), 70_000);
    assert.equal(await count('vakt-v6'), 300);
    const names = (await ns.must('ipset', ['list', '-n'])).split('\n').filter(Boolean).sort();
    assert.deepEqual(names, ['vakt-v4', 'vakt-v6']);
    await ns.must('iptables', ['-D', 'INPUT', '-m', 'set', '--match-set', 'vakt-v4', 'src', '-j', 'DROP']);
  });

  it('an aggregated nftables file passes nft -c and finds CIDR members (case 008)', async () => {
    // A whole /24 and a whole v6 /120 at a higher score, collapsed by aggregate=true.
    await seedReputations(t.store.db, [
      ...Array.from({ length: 256 }, (_, i) => ({ ip: `62.83.0.${i}`, score: 95 })),
      ...Array.from({ length: 256 }, (_, i) => ({ ip: `2a05:d014:ff:300::${i.toString(16)}`, score: 95 })),
    ]);
    const res = await t.app.inject({
      method: 'GET',
      url: '/v1/key/blacklist?format=nftables&aggregate=true&scoreMinimum=90',
      headers: bearer(key),
    });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /62\.83\.0\.0\/24/);
    assert.match(res.body, /2a05:d014:ff:300::\/120/);
    await ns.must('nft', ['-c', '-f', '-'], res.body);
    await ns.must('nft', ['-f', '-'], res.body);
    await ns.must('nft', ['-f', '-'], res.body);
    const tables = (await ns.must('nft', ['list', 'tables'])).trim().split('\n');
    // (iptables-nft may own `table ip filter`; ours must be inet, never ip.)
    assert.ok(tables.includes('table inet vakt'), tables.join('; '));
    assert.ok(!tables.includes('table ip vakt'));
    const listing = await ns.must('nft', ['list', 'table', 'inet', 'vakt']);
    assert.match(listing, /set v4net \{[^}]*flags interval/);
    const [v4Set, v6Set] = ['v4net', 'v6net'];
    await ns.must('nft', ['get', 'element', 'inet', 'vakt', v4Set, '{ 62.83.0.77 }']);
    await ns.must('nft', ['get', 'element', 'inet', 'vakt', v6Set, '{ 2a05:d014:ff:300::5 }']);
  });

  it('case 008 end to end: a reported /24 and a feed-listed IPv6 /64 load into nft interval sets', async () => {
    // Every address of 45.83.0.0/24 reported through the API, the /64 only in an imported feed.
    const reports = Array.from({ length: 256 }, (_, i) => ({
      ip: `45.83.0.${i}`,
      category: 'brute_force',
      protocol: 'ssh',
    }));
    const bulk = await t.app.inject({
      method: 'POST',
      url: '/v1/key/bulk-report',
      headers: bearer(key),
      payload: { reports },
    });
    assert.equal(bulk.statusCode, 200, bulk.body);
    assert.equal(bulk.json().accepted, 256);
    const dir = mkdtempSync(join(tmpdir(), 'vakt-case-008-'));
    try {
      const feed = join(dir, 'feed.txt');
      writeFileSync(feed, '2a05:d014:ff:212::/64\n');
      await importFeed(t.services, [feed], { name: 'case008', trust: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const checked = async (ip: string) =>
      (await t.app.inject({ method: 'GET', url: `/v1/key/check/${ip}`, headers: bearer(key) })).json()
        .confidenceLevel as number;
    const scoreMinimum = Math.min(await checked('45.83.0.77'), await checked('2a05:d014:ff:212::5'));
    assert.ok(scoreMinimum > 0);
    const res = await t.app.inject({
      method: 'GET',
      url: `/v1/key/blacklist?format=nftables&aggregate=true&scoreMinimum=${scoreMinimum}`,
      headers: bearer(key),
    });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /45\.83\.0\.0\/24/);
    assert.match(res.body, /add element inet vakt v6net \{[^}]*2a05:d014:ff:212::\/64/);
    await ns.must('nft', ['-c', '-f', '-'], res.body);
    await ns.must('nft', ['-f', '-'], res.body);
    const tables = (await ns.must('nft', ['list', 'tables'])).trim().split('\n');
    assert.ok(tables.includes('table inet vakt'), tables.join('; '));
    assert.ok(!tables.includes('table ip vakt'));
    const listing = await ns.must('nft', ['list', 'set', 'inet', 'vakt', 'v6net']);
    assert.match(listing, /flags interval/);
    await ns.must('nft', ['get', 'element', 'inet', 'vakt', 'v4net', '{ 45.83.0.77 }']);
    await ns.must('nft', ['get', 'element', 'inet', 'vakt', 'v6net', '{ 2a05:d014:ff:212::5 }']);
    // An address outside both is not found.
    const outside = await ns.run('nft', [
      'get',
      'element',
      'inet',
      'vakt',
      'v6net',
      '{ 2a05:d014:ff:213::5 }',
    ]);
    assert.notEqual(outside.code, 0);
  });
});
