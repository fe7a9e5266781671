// The check fast lane (decision 0007) over real HTTP: the same status, headers and bytes as the Fastify route,
// exact quota, and everything unusual left to the route.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config/config.js';
import { buildApp, defaultLoggerOptions } from '../src/http/build-app.js';
import { ReservingQuotaCounter } from '../src/quota/reserving-quota-counter.js';
import { StoreQuotaCounter } from '../src/quota/store-quota-counter.js';
import { createServices, type Services } from '../src/services/services.js';
import { Store } from '../src/store/store.js';
import { createTestDatabase, type TestDatabase } from './helpers/engines.js';
import { FakeClock } from './helpers/fake-clock.js';

interface Served {
  app: FastifyInstance;
  services: Services;
  base: string;
  lines: string[];
  close(): Promise<void>;
}

async function serve(database: TestDatabase, level: string): Promise<Served> {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const config = loadConfig({ VAKT_DATABASE_URL: database.url });
  const store = await Store.open(config.databaseUrl);
  const quota = new ReservingQuotaCounter(new StoreQuotaCounter(store));
  const services = createServices(config, store, quota, new FakeClock());
  const app = await buildApp(services, { logger: { ...(defaultLoggerOptions(level) as object), stream } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return {
    app,
    services,
    base: `http://127.0.0.1:${port}`,
    lines,
    close: async () => {
      await app.close();
      await quota.close();
      await store.close();
    },
  };
}

const VOLATILE = new Set([
  'date',
  'connection',
  'keep-alive',
  'x-request-id',
  'x-daily-used',
  'x-daily-remaining',
  'x-ratelimit-remaining',
]);

function stable(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    if (!VOLATILE.has(name)) out[name] = value;
  });
  return out;
}

describe('check fast lane', () => {
  let database: TestDatabase;
  let t: Served;
  let key: string;
  let sensorKey: string;
  const auth = () => ({ authorization: `Bearer ${key}` });

  before(async () => {
    database = await createTestDatabase('sqlite');
    t = await serve(database, 'warn');
    key = (await t.services.keys.create({ tier: 'tier_1', quotaOverrides: { lookups: 100_000 } })).key;
    sensorKey = (await t.services.keys.create({ tier: 'sensor' })).key;
    const reporter = (await t.services.keys.create({ tier: 'tier_1' })).key;
    for (const [ip, category] of [
      ['45.83.12.7', 'port_scan'],
      ['45.83.12.7', 'brute_force'],
      ['2a01:4f8::7', 'web_exploit'],
    ]) {
      const res = await fetch(`${t.base}/v1/key/report`, {
        method: 'POST',
        headers: { authorization: `Bearer ${reporter}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ip, category, comment: 'seen <script>x</script>' }),
      });
      assert.equal(res.status, 200, await res.text());
    }
  });
  after(async () => {
    await t?.close();
    await database?.drop();
  });

  it('answers repeated checks with the same status, headers and bytes as the route', async () => {
    for (const query of [
      '',
      '?verbose=false',
      '?ignoreWhitelist=true',
      '?verbose=true&ignoreWhitelist=false',
    ]) {
      const url = `/v1/key/check/45.83.12.7${query}`;
      const before = t.app.checkFastLane.served();
      // First through the route (nothing cached yet for this variant), then from the lane.
      const routed = await fetch(`${t.base}${url}`, { headers: auth() });
      const routedBody = await routed.text();
      let laned: Response | undefined;
      let lanedBody = '';
      for (let i = 0; i < 5; i++) {
        laned = await fetch(`${t.base}${url}`, { headers: auth() });
        lanedBody = await laned.text();
      }
      assert.ok(laned);
      assert.ok(t.app.checkFastLane.served() > before, `the lane answered ${url}`);
      assert.equal(laned.status, 200);
      assert.equal(lanedBody, routedBody);
      assert.deepEqual(stable(laned.headers), stable(routed.headers));
      assert.match(laned.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
      // The same through Fastify's inject (never the lane): identical body.
      const injected = await t.app.inject({ method: 'GET', url, headers: auth() });
      assert.equal(injected.body, lanedBody);
      assert.deepEqual(
        Object.keys(stable(laned.headers)).sort(),
        Object.keys(injected.headers)
          .filter((name) => !VOLATILE.has(name))
          .sort(),
      );
    }
  });

  it('counts every request once, in order, and echoes a sane X-Request-Id', async () => {
    const used: number[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${t.base}/v1/key/check/45.83.12.7`, {
        headers: { ...auth(), 'x-request-id': `trace-${i}` },
      });
      await res.arrayBuffer();
      assert.equal(res.headers.get('x-request-id'), `trace-${i}`);
      used.push(Number(res.headers.get('x-daily-used')));
      assert.equal(
        Number(res.headers.get('x-daily-remaining')),
        100_000 - Number(res.headers.get('x-daily-used')),
      );
    }
    for (let i = 1; i < used.length; i++) assert.equal(used[i], (used[i - 1] ?? 0) + 1);
    const odd = await fetch(`${t.base}/v1/key/check/45.83.12.7`, {
      headers: { ...auth(), 'x-request-id': 'bad id with spaces' },
    });
    await odd.arrayBuffer();
    assert.match(odd.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('leaves everything unusual to the route', async () => {
    // Warm the caches for the IPv6 address and the default variant.
    for (let i = 0; i < 3; i++) {
      await (await fetch(`${t.base}/v1/key/check/2a01:4f8::7`, { headers: auth() })).arrayBuffer();
    }
    const cases: { url: string; headers?: Record<string, string>; method?: string; status: number }[] = [
      { url: '/v1/key/check/45.83.12.7?maxAge=3', status: 200 },
      { url: '/v1/key/check/45.83.12.7?protocols=ssh', status: 200 },
      { url: '/v1/key/check/45.83.12.7?exclude=feeds', status: 200 },
      { url: '/v1/key/check/45.83.12.7?verbose=maybe', status: 400 },
      { url: '/v1/key/check/45.83.12.7?verbose=0', status: 400 },
      { url: `/v1/key/check/45.83.12.7?key=${key}`, headers: {}, status: 200 },
      { url: '/v1/key/check/45.83.12.7/', status: 200 },
      { url: '/v1/key/check/2a01%3A4f8%3A%3A7', status: 200 },
      { url: '/v1/key/check/045.83.12.7', status: 400 },
      { url: '/v1/key/check/::ffff:45.83.12.7', status: 200 },
      { url: '/v1/key/check/45.83.12.7', method: 'HEAD', status: 200 },
      { url: '/v1/key/check/45.83.12.7', headers: { authorization: `Bearer ${sensorKey}` }, status: 403 },
      { url: '/v1/key/check/45.83.12.7', headers: { authorization: 'Bearer sk_free_nope' }, status: 401 },
      { url: '/v1/key/check/45.83.12.7', headers: {}, status: 401 },
      { url: '/v1/key/check/10.0.0.1', status: 200 },
    ];
    for (const c of cases) {
      const before = t.app.checkFastLane.served();
      const res = await fetch(`${t.base}${c.url}`, {
        method: c.method ?? 'GET',
        headers: c.headers ?? auth(),
      });
      const body = await res.text();
      assert.equal(res.status, c.status, `${c.method ?? 'GET'} ${c.url}: ${body}`);
      if (c.url !== '/v1/key/check/45.83.12.7' || c.method === 'HEAD' || c.headers) {
        // Not answered by the lane (first sight of a variant, or a request the lane refuses).
        if (!c.url.endsWith('/v1/key/check/10.0.0.1') && !c.url.includes('::ffff:')) {
          assert.equal(t.app.checkFastLane.served(), before, `${c.url} went to the route`);
        }
      }
      if (res.status === 200 && c.method !== 'HEAD') {
        assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
        assert.ok(JSON.parse(body).ip);
      }
    }
  });

  it('gives exactly the quota over HTTP, with 429 and Retry-After past it', async () => {
    const limited = (await t.services.keys.create({ tier: 'free', quotaOverrides: { lookups: 1_000 } })).key;
    let ok = 0;
    let over = 0;
    for (let i = 0; i < 1_006; i++) {
      const res = await fetch(`${t.base}/v1/key/check/45.83.12.7`, {
        headers: { authorization: `Bearer ${limited}` },
      });
      await res.arrayBuffer();
      if (res.status === 200) ok += 1;
      if (res.status === 429) {
        over += 1;
        assert.ok(Number(res.headers.get('retry-after')) > 0);
      }
    }
    assert.equal(ok, 1_000);
    assert.equal(over, 6);
  });

  it('is off while the access log is on, so every request is logged', async () => {
    const logged = await serve(database, 'info');
    try {
      for (let i = 0; i < 5; i++) {
        await (await fetch(`${logged.base}/v1/key/check/45.83.12.7`, { headers: auth() })).arrayBuffer();
      }
      assert.equal(logged.app.checkFastLane.served(), 0);
      const completed = logged.lines.filter((line) => line.includes('request completed'));
      assert.equal(completed.length, 5);
    } finally {
      await logged.close();
    }
  });
});
