import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTimestamp, validateEvent } from './events.js';

const NOW = Date.parse('2026-03-15T12:00:00Z');
const good = {
  id: 'ev-1',
  ts: '2026-03-15T11:59:00Z',
  sensor: 'hp-fra-1',
  session: 's-1',
  srcIp: '::ffff:45.83.12.40',
  srcPort: 50000,
  dstPort: 22,
  protocol: 'SSH',
  type: 'auth',
  username: 'root',
  password: '',
  success: false,
  extra: 'dropped',
};

function reason(input: unknown, maxAgeMs: number | null = null): string {
  const result = validateEvent(input, NOW, maxAgeMs);
  assert.ok(!result.ok, 'expected a rejection');
  return result.reason;
}

describe('validateEvent', () => {
  it('normalises a good event and drops unknown fields', () => {
    const result = validateEvent(good, NOW, null);
    assert.ok(result.ok);
    assert.deepEqual(result.event, {
      id: 'ev-1',
      ts: NOW - 60_000,
      sensor: 'hp-fra-1',
      session: 's-1',
      srcIp: '45.83.12.40',
      srcPort: 50000,
      dstPort: 22,
      protocol: 'ssh',
      type: 'auth',
      username: 'root',
      password: '',
      success: false,
    });
  });

  it('accepts epoch milliseconds and each event type', () => {
    const base = { ...good, ts: NOW };
    for (const extra of [
      { type: 'connect' },
      { type: 'command', command: 'uname -a' },
      { type: 'request', method: 'GET', path: '/', userAgent: null, body: null },
      { type: 'download', url: 'http://x/y', sha256: null },
      { type: 'tunnel', targetHost: 'example.com', targetPort: 25, data: null },
      { type: 'disconnect', durationMs: 1500 },
    ]) {
      const result = validateEvent({ ...base, ...extra }, NOW, null);
      assert.ok(result.ok, `${extra.type}: ${result.ok ? '' : result.reason}`);
    }
  });

  it('rejects each bad field with a reason', () => {
    assert.match(reason(null), /object/);
    assert.match(reason({ ...good, srcIp: '10.0.0.5' }), /public/);
    assert.match(reason({ ...good, srcIp: '010.1.2.3' }), /IP address/);
    assert.match(reason({ ...good, ts: '2026-03-15T12:06:00Z' }), /future/);
    assert.match(reason({ ...good, ts: '2026-01-01T00:00:00Z' }, 86_400_000), /older/);
    assert.match(reason({ ...good, ts: 'yesterday' }), /ISO-8601/);
    assert.match(reason({ ...good, ts: '2026-02-30T00:00:00Z' }), /out-of-range/);
    assert.match(reason({ ...good, protocol: 'x'.repeat(33) }), /protocol/);
    assert.match(reason({ ...good, protocol: 'ss h' }), /protocol/);
    assert.match(reason({ ...good, id: '' }), /id/);
    assert.match(reason({ ...good, id: 'a\u0000b' }), /control/);
    assert.match(reason({ ...good, srcPort: 70000 }), /srcPort/);
    assert.match(reason({ ...good, type: 'ping' }), /type/);
    assert.match(reason({ ...good, success: 'no' }), /success/);
    assert.match(reason({ ...good, username: 'u'.repeat(257) }), /username/);
    assert.match(reason({ ...good, type: 'download', url: 'http://x', sha256: 'ABC' }), /sha256/);
    assert.match(reason({ ...good, type: 'tunnel', targetHost: 'x' }), /targetPort/);
  });

  it('reads offsets and treats a missing offset as UTC', () => {
    assert.equal(parseTimestamp('2026-03-15T13:00:00+01:00'), Date.parse('2026-03-15T12:00:00Z'));
    assert.equal(parseTimestamp('2026-03-15T12:00:00'), Date.parse('2026-03-15T12:00:00Z'));
    assert.equal(parseTimestamp('2026-03-15T12:00:00.123456Z'), Date.parse('2026-03-15T12:00:00.123Z'));
  });
});
