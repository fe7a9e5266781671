// Decision 0005: an answer computed while its IP's evidence changed is not cached (the next check recomputes).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseIp } from '../src/core/ip.js';
import type { CheckOptions, ReputationService } from '../src/services/reputation-service.js';
import { createTestApp, type TestApp } from './helpers/test-app.js';

const OPTIONS: CheckOptions = { verbose: true, maxAgeDays: null, protocols: null, ignoreWhitelist: false };

describe('check answer cache and concurrent invalidation', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp('sqlite');
  });
  after(async () => t?.close());

  /** Counts computations; `during(n)` runs inside the n-th one, after its reads, before it returns. */
  function instrument(service: ReputationService, during: (n: number) => void): () => number {
    const target = service as unknown as { compute: (...args: unknown[]) => Promise<unknown> };
    const compute = target.compute.bind(service);
    let count = 0;
    target.compute = async (...args: unknown[]) => {
      count += 1;
      const result = await compute(...args);
      during(count);
      return result;
    };
    return () => count;
  }

  const address = (text: string) => {
    const parsed = parseIp(text);
    assert.ok(parsed.ok);
    return parsed.ip;
  };

  it('caches an answer when nothing was invalidated meanwhile', async () => {
    const ip = address('45.83.14.1');
    const computed = instrument(t.services.reputation, () => {});
    await t.services.reputation.check(ip, OPTIONS, t.clock.now());
    await t.services.reputation.check(ip, OPTIONS, t.clock.now());
    assert.equal(computed(), 1);
  });

  it("recomputes after the IP's evidence was written during the computation", async () => {
    const ip = address('45.83.14.2');
    const scorer = t.services.scorer as unknown as { touched(ip: string): void };
    const computed = instrument(t.services.reputation, (n) => {
      if (n === 1) scorer.touched(ip.text);
    });
    await t.services.reputation.check(ip, OPTIONS, t.clock.now());
    await t.services.reputation.check(ip, OPTIONS, t.clock.now());
    assert.equal(computed(), 2);
    await t.services.reputation.check(ip, OPTIONS, t.clock.now());
    assert.equal(computed(), 2, 'the second answer is cached');
  });

  it('recomputes after everything was invalidated during the computation', async () => {
    const ip = address('45.83.14.3');
    const computed = instrument(t.services.reputation, (n) => {
      if (n === 1) t.services.reputation.invalidateAll();
    });
    const json = await t.services.reputation.checkJson(ip, OPTIONS, t.clock.now());
    assert.equal(JSON.parse(json).ip, '45.83.14.3');
    await t.services.reputation.checkJson(ip, OPTIONS, t.clock.now());
    assert.equal(computed(), 2);
  });
});
