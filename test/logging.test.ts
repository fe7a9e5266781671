// Access logs: the ?key= secret is redacted, Authorization never logged, client IP headers trusted only from proxies.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.js';
import { buildApp, defaultLoggerOptions } from '../src/http/build-app.js';
import { StoreQuotaCounter } from '../src/quota/store-quota-counter.js';
import { createServices } from '../src/services/services.js';
import { Store } from '../src/store/store.js';
import { createTestDatabase, type TestDatabase } from './helpers/engines.js';
import { FakeClock } from './helpers/fake-clock.js';

async function appWithLog(database: TestDatabase, env: Record<string, string>) {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const config = loadConfig({ VAKT_DATABASE_URL: database.url, ...env });
  const store = await Store.open(config.databaseUrl);
  const services = createServices(config, store, new StoreQuotaCounter(store), new FakeClock());
  const app = await buildApp(services, { logger: { ...(defaultLoggerOptions('info') as object), stream } });
  return {
    app,
    services,
    lines,
    close: async () => {
      await app.close();
      await store.close();
    },
  };
}

describe('access log', () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase('sqlite');
  });
  after(async () => database?.drop());

  it('redacts the key parameter and never logs the Authorization header', async () => {
    const t = await appWithLog(database, {});
    try {
      const { key } = await t.services.keys.create({ tier: 'free' });
      await t.app.inject({ method: 'GET', url: `/v1/key/check/45.83.12.7?verbose=false&key=${key}` });
      await t.app.inject({
        method: 'GET',
        url: '/v1/key/check/45.83.12.7',
        headers: { authorization: `Bearer ${key}` },
      });
      const all = t.lines.join('\n');
      assert.ok(t.lines.length >= 4, all);
      assert.ok(!all.includes(key.slice(8)), 'the secret must not appear in the log');
      assert.match(all, /key=\[redacted\]/);
      assert.match(all, /verbose=false/);
    } finally {
      await t.close();
    }
  });

  it('trusts X-Forwarded-For only from configured proxies', async () => {
    const untrusted = await appWithLog(database, {});
    const trusted = await appWithLog(database, { VAKT_TRUSTED_PROXIES: '127.0.0.0/8' });
    try {
      for (const t of [untrusted, trusted]) {
        await t.app.inject({
          method: 'GET',
          url: '/healthz',
          remoteAddress: '127.0.0.1',
          headers: { 'x-forwarded-for': '45.83.99.1' },
        });
      }
      const ipOf = (lines: string[]) =>
        lines.map((l) => JSON.parse(l)).find((entry) => entry.req?.url === '/healthz')?.req.ip;
      assert.equal(ipOf(untrusted.lines), '127.0.0.1');
      assert.equal(ipOf(trusted.lines), '45.83.99.1');
    } finally {
      await untrusted.close();
      await trusted.close();
    }
  });
});
