// Real `vakt serve` processes: first start, quotas exact across two processes on one SQLite file, kill -9 durability, CLI keys.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/engines.js';
import { runCli, type ServerProcess, startServerProcess } from './helpers/server-process.js';

const KEY_LINE = /sk_unlimited_[0-9A-Za-z]{32,}/g;

describe('vakt serve on SQLite (processes)', () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  before(async () => {
    database = await createTestDatabase('sqlite');
    env = { VAKT_DATABASE_URL: database.url };
  });
  after(async () => database?.drop());

  it('creates the database and one operator key on first start, and none on the next', async () => {
    const first = await startServerProcess({ ...env, VAKT_LOG_LEVEL: 'info' });
    let key: string;
    try {
      const printed = first.output().match(KEY_LINE) ?? [];
      assert.ok(printed.length >= 1, first.output());
      key = printed[0] ?? '';
      assert.match(first.output(), /curl -H "Authorization: Bearer sk_unlimited_/);
      const res = await fetch(`${first.url}/v1/key/check/45.83.12.7`, {
        headers: { authorization: `Bearer ${key}` },
      });
      assert.equal(res.status, 200);
      const mode = statSync(database.url.replace('sqlite:', '')).mode & 0o777;
      assert.equal(mode, 0o600);
      // The retention job runs at start; what it removed is in the server's log.
      const deadline = Date.now() + 5_000;
      while (!first.output().includes('"job":"retention"') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.match(
        first.output(),
        /"job":"retention","result":\{"dryRun":false.*"reputations":0.*"msg":"background job ran"/,
      );
    } finally {
      await first.stop();
    }
    const second = await startServerProcess(env);
    try {
      assert.doesNotMatch(second.output(), KEY_LINE);
      const res = await fetch(`${second.url}/v1/key/status`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(res.status, 200);
    } finally {
      await second.stop();
    }
  });

  it('counts quota exactly across two processes on the same database file', async () => {
    const created = await runCli(
      ['keys', 'create', '--tier', 'free', '--quota', 'lookups=40', '--json'],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    const { key, tier, id } = JSON.parse(created.stdout);
    assert.equal(tier, 'free');
    assert.match(id, /^key_/);
    const servers: ServerProcess[] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
    try {
      const statuses = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          fetch(`${servers[i % 2]?.url}/v1/key/check/45.83.30.${i % 250}`, {
            headers: { authorization: `Bearer ${key}` },
          }).then(async (r) => {
            await r.arrayBuffer();
            return { status: r.status, retryAfter: r.headers.get('retry-after') };
          }),
        ),
      );
      assert.equal(statuses.filter((s) => s.status === 200).length, 40);
      const limited = statuses.filter((s) => s.status === 429);
      assert.equal(limited.length, 60);
      assert.ok(limited.every((s) => Number(s.retryAfter) > 0));
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  });

  it('keeps a report acknowledged just before kill -9', async () => {
    const created = JSON.parse((await runCli(['keys', 'create', '--tier', 'tier_1', '--json'], env)).stdout);
    const server = await startServerProcess(env);
    let acknowledged: string[] = [];
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          fetch(`${server.url}/v1/key/report`, {
            method: 'POST',
            headers: { authorization: `Bearer ${created.key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ ip: `45.83.31.${i + 1}`, category: 'brute_force' }),
          }).then(async (r) => ({
            ip: `45.83.31.${i + 1}`,
            ok: r.status === 200 && ((await r.json()) as any).success,
          })),
        ),
      );
      acknowledged = results.filter((r) => r.ok).map((r) => r.ip);
    } finally {
      await server.stop('SIGKILL');
    }
    assert.equal(acknowledged.length, 20);
    const restarted = await startServerProcess(env);
    try {
      for (const ip of acknowledged) {
        const body = (await (
          await fetch(`${restarted.url}/v1/key/check/${ip}`, {
            headers: { authorization: `Bearer ${created.key}` },
          })
        ).json()) as any;
        assert.equal(body.found, true, ip);
        assert.equal(body.contributor.reportCount, 1, ip);
      }
    } finally {
      await restarted.stop();
    }
  });

  it('keeps a bulk report acknowledged just before kill -9, and publishes its TAXII versions after restart', async () => {
    const created = JSON.parse((await runCli(['keys', 'create', '--tier', 'tier_1', '--json'], env)).stdout);
    // Every scored IP is listed, so each reported IP must reach the feed (decision 0852).
    const feedEnv = { ...env, VAKT_TAXII_SCORE_MINIMUM: '1' };
    const ips = Array.from({ length: 200 }, (_, i) => `45.83.${40 + Math.floor(i / 100)}.${(i % 100) + 1}`);
    const server = await startServerProcess(feedEnv);
    try {
      const res = await fetch(`${server.url}/v1/key/bulk-report`, {
        method: 'POST',
        headers: { authorization: `Bearer ${created.key}`, 'content-type': 'text/csv' },
        body: ips.map((ip) => `${ip},brute_force,ssh`).join('\n'),
      });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as any).accepted, ips.length);
    } finally {
      // At once: the outbox runner (20 ms after the commit) has most likely not published yet.
      await server.stop('SIGKILL');
    }
    const restarted = await startServerProcess(feedEnv);
    try {
      for (const ip of [ips[0], ips[99], ips[199]]) {
        const body = (await (
          await fetch(`${restarted.url}/v1/key/check/${ip}`, {
            headers: { authorization: `Bearer ${created.key}` },
          })
        ).json()) as any;
        assert.equal(body.found, true, ip);
        // Acknowledged, maybe not applied before the kill (decision 0853): the check waits for the rows.
        assert.equal(body.contributor.reportCount, 1, ip);
      }
      // The restarted runner drains the marks at start; the feed must list every IP within seconds.
      const listed = new Set<string>();
      const deadline = Date.now() + 15_000;
      while (listed.size < ips.length && Date.now() < deadline) {
        listed.clear();
        let next: string | undefined;
        do {
          const page = (await (
            await fetch(
              `${restarted.url}/taxii2/collections/threat-intel/objects/?match[type]=indicator&limit=1000${next ? `&next=${next}` : ''}`,
              { headers: { authorization: `Bearer ${created.key}` } },
            )
          ).json()) as any;
          for (const object of page.objects ?? []) {
            const ip = /'([^']+)'/.exec(object.pattern)?.[1];
            if (ip && ips.includes(ip)) listed.add(ip);
          }
          next = page.more ? page.next : undefined;
        } while (next);
        if (listed.size < ips.length) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(listed.size, ips.length);
    } finally {
      await restarted.stop();
    }
  });

  it('lists, rotates and disables keys from the CLI without showing secrets again', async () => {
    const created = JSON.parse(
      (await runCli(['keys', 'create', '--tier', 'tier_2', '--name', 'ops', '--json'], env)).stdout,
    );
    const list = await runCli(['keys', 'list', '--json'], env);
    assert.equal(list.code, 0);
    assert.ok(!list.stdout.includes(created.key));
    const entry = JSON.parse(list.stdout).find((k: { id: string }) => k.id === created.id);
    assert.equal(entry.tier, 'tier_2');
    assert.equal(entry.name, 'ops');
    const rotated = await runCli(['keys', 'rotate', created.id, '--json'], env);
    assert.equal(rotated.code, 0);
    assert.notEqual(JSON.parse(rotated.stdout).key, created.key);
    assert.equal((await runCli(['keys', 'disable', created.id], env)).code, 0);
    const table = await runCli(['keys', 'list'], env);
    assert.match(table.stdout, new RegExp(`${created.id}.*disabled`));
    const bad = await runCli(['keys', 'create', '--tier', 'gold'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--tier: unknown tier "gold"/);
  });

  it('refuses to start with every configuration problem listed', async () => {
    const result = await runCli(['serve'], {
      ...env,
      VAKT_PORT: 'eighty',
      VAKT_BOGUS: '1',
      VAKT_ALLOWLIST: 'nope',
      VAKT_LOG_LEVEL: 'loud',
    });
    assert.equal(result.code, 1);
    for (const name of ['VAKT_PORT', 'VAKT_BOGUS', 'VAKT_ALLOWLIST', 'VAKT_LOG_LEVEL']) {
      assert.match(result.stderr, new RegExp(name));
    }
  });
});

describe('first start on a fresh database', () => {
  it('creates exactly one operator key when two instances start at once', async () => {
    const database = await createTestDatabase('sqlite');
    try {
      const servers = await Promise.all([
        startServerProcess({ VAKT_DATABASE_URL: database.url }),
        startServerProcess({ VAKT_DATABASE_URL: database.url }),
      ]);
      try {
        const printed = servers.flatMap((s) => s.output().match(KEY_LINE) ?? []);
        assert.equal(new Set(printed).size, 1, servers.map((s) => s.output()).join('\n'));
      } finally {
        await Promise.all(servers.map((s) => s.stop()));
      }
      const list = await runCli(['keys', 'list', '--json'], { VAKT_DATABASE_URL: database.url });
      assert.equal(JSON.parse(list.stdout).length, 1);
    } finally {
      await database.drop();
    }
  });

  it('migrates one fresh file from several processes at once without a race', async () => {
    for (let round = 0; round < 3; round++) {
      const database = await createTestDatabase('sqlite');
      try {
        const results = await Promise.all(
          Array.from({ length: 3 }, () => runCli(['migrate'], { VAKT_DATABASE_URL: database.url })),
        );
        for (const result of results) assert.equal(result.code, 0, result.stderr);
      } finally {
        await database.drop();
      }
    }
  });
});
