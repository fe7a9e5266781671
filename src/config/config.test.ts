import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, redactedConfig } from './config.js';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    assert.equal(config.databaseUrl, 'sqlite:./data/vakt.db');
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 8080);
    assert.equal(config.taxiiScoreMinimum, 50);
    assert.equal(config.retentionDays, 30);
    assert.equal(config.redisUrl, null);
    assert.equal(config.publicUrl, 'http://127.0.0.1:8080');
    assert.ok(Object.isFrozen(config));
  });

  it('lists every problem at once, unknown VAKT_* variables included', () => {
    try {
      loadConfig({
        VAKT_PORT: '99999',
        VAKT_TYPO: 'x',
        VAKT_DATABASE_URL: 'mysql://x',
        VAKT_TRUSTED_PROXIES: '10.0.0.0/33',
      });
      assert.fail('expected a ConfigError');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.problems.length, 4);
      for (const name of ['VAKT_PORT', 'VAKT_TYPO', 'VAKT_DATABASE_URL', 'VAKT_TRUSTED_PROXIES']) {
        assert.ok(
          error.problems.some((p) => p.startsWith(name)),
          name,
        );
      }
    }
  });

  it('reads the same settings from a JSON file, with the environment winning', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vakt-config-'));
    const file = join(dir, 'vakt.json');
    writeFileSync(file, JSON.stringify({ VAKT_PORT: 9090, VAKT_HOST: '0.0.0.0' }));
    const config = loadConfig({ VAKT_CONFIG_FILE: file, VAKT_HOST: '127.0.0.2' });
    assert.equal(config.port, 9090);
    assert.equal(config.host, '127.0.0.2');
    writeFileSync(file, JSON.stringify({ VAKT_NOPE: 1 }));
    assert.throws(() => loadConfig({ VAKT_CONFIG_FILE: file }), /VAKT_NOPE/);
  });

  it('overrides tier limits and parses proxy and allowlist CIDRs', () => {
    const config = loadConfig({
      VAKT_TIER_LIMITS: 'free.lookups=5,tier_1.blacklist=none',
      VAKT_TRUSTED_PROXIES: '10.0.0.0/8 ::1',
      VAKT_ALLOWLIST: '45.83.0.0/16,2a05::/16',
    });
    assert.equal(config.tiers.free.limits.lookups, 5);
    assert.equal(config.tiers.free.limits.reports, 1000);
    assert.equal(config.tiers.tier_1.limits.blacklist, null);
    assert.equal(config.trustedProxies.length, 2);
    assert.equal(config.allowlist[0]?.text, '45.83.0.0/16');
  });

  it('masks credentials when printed', () => {
    const config = loadConfig({
      VAKT_DATABASE_URL: 'postgres://vakt:s3cret@db:5432/vakt',
      VAKT_REDIS_URL: 'redis://:pw@cache:6379',
    });
    const printed = JSON.stringify(redactedConfig(config));
    assert.ok(!printed.includes('s3cret'));
    assert.ok(!printed.includes(':pw@'));
  });
});
