import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cidrContains, ipFromKey, isPublicCidr, isPublicIp, parseCidr, parseIp } from './ip.js';

function canonical(input: string): string {
  const result = parseIp(input);
  assert.ok(result.ok, `expected ${input} to parse`);
  return result.ip.text;
}

describe('parseIp', () => {
  it('says why dotted-quad text is not an IPv4 address, checking the parts in order', () => {
    const reason = (input: string) => {
      const result = parseIp(input);
      assert.ok(!result.ok, `expected ${input} to be refused`);
      return result.reason;
    };
    const parts = 'an IPv4 address has four dot-separated numbers';
    const octet = 'IPv4 octets are decimal numbers 0-255';
    const zero = 'leading zeros in an IPv4 octet are ambiguous';
    for (const input of ['1.2.3', '1.2.3.4.5', '1.2.3.4.', '....']) assert.equal(reason(input), parts, input);
    for (const input of ['1.2.3.256', '1.2..4', '.1.2.3', '1.2.3.x', '1.2.3.1234', '1.2.3.-1', '1.2.3.+1']) {
      assert.equal(reason(input), octet, input);
    }
    for (const input of ['01.2.3.4', '1.2.3.00', '1.2.3.012']) assert.equal(reason(input), zero, input);
    // The first bad part decides: a leading zero before an out-of-range octet, and the other way round.
    assert.equal(reason('01.2.3.999'), zero);
    assert.equal(reason('999.2.3.01'), octet);
    assert.equal(canonical('0.0.0.0'), '0.0.0.0');
    assert.equal(canonical('255.255.255.255'), '255.255.255.255');
    assert.equal(canonical('100.64.10.9'), '100.64.10.9');
  });

  it('turns IPv4-mapped IPv6 into IPv4', () => {
    assert.equal(canonical('::ffff:45.83.12.9'), '45.83.12.9');
    assert.equal(canonical('::FFFF:2d53:0c09'), '45.83.12.9');
    assert.equal(canonical('0:0:0:0:0:ffff:45.83.12.9'), '45.83.12.9');
  });

  it('writes IPv6 in RFC 5952 form', () => {
    assert.equal(canonical('2A05:D014:00FF:0212:0000:0000:0003:0001'), '2a05:d014:ff:212::3:1');
    assert.equal(canonical('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(canonical('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
    assert.equal(canonical('::'), '::');
    assert.equal(canonical('::1'), '::1');
    assert.equal(canonical('fe80::'), 'fe80::');
    assert.equal(canonical('[2a05:d014:ff:212::3:1]'), '2a05:d014:ff:212::3:1');
  });

  it('refuses leading-zero octets and malformed text', () => {
    for (const bad of [
      '010.1.2.3',
      '1..218.28',
      '1.2.3',
      '256.1.1.1',
      '1.2.3.4.5',
      '1:2:3',
      'abc',
      '',
      ':::',
      '1::2::3',
      'fe80::1%eth0',
      '45.83.12.7/32',
      '12345::',
      '1:2:3:4:5:6:7:8:9',
    ]) {
      assert.equal(parseIp(bad).ok, false, bad);
    }
  });

  it('round-trips through the 16-byte key', () => {
    for (const text of ['45.83.12.9', '2a05:d014:ff:212::3:1', '::', '0.0.0.0']) {
      const parsed = parseIp(text);
      assert.ok(parsed.ok);
      assert.equal(parsed.ip.key.length, 16);
      assert.equal(ipFromKey(parsed.ip.key).text, text);
    }
  });
});

describe('isPublicIp', () => {
  it('agrees with isPublicCidr on a /32 at every IPv4 range edge and on spread addresses', () => {
    const texts: string[] = [];
    const edges = [0, 10, 100, 127, 169, 172, 192, 198, 203, 224, 240, 255];
    for (const a of edges)
      for (const b of [0, 1, 15, 16, 31, 32, 63, 64, 88, 99, 127, 128, 168, 254, 255])
        for (const c of [0, 1, 2, 99, 100, 113, 255])
          for (const d of [0, 1, 254, 255]) texts.push(`${a}.${b}.${c}.${d}`);
    for (let i = 0; i < 20_000; i++)
      texts.push(`${(i * 7919) % 256}.${(i * 104729) % 256}.${i % 256}.${(i * 31) % 256}`);
    for (const text of texts) {
      const ip = parseIp(text);
      const cidr = parseCidr(`${text}/32`);
      assert.ok(ip.ok && cidr.ok);
      assert.equal(isPublicIp(ip.ip), isPublicCidr(cidr.cidr), text);
    }
  });

  const check = (text: string) => {
    const parsed = parseIp(text);
    assert.ok(parsed.ok, text);
    return isPublicIp(parsed.ip);
  };
  it('refuses every non-public range', () => {
    for (const text of [
      '172.18.0.1',
      '10.0.0.5',
      '127.0.0.1',
      '100.64.0.1',
      '169.254.1.1',
      '192.0.2.10',
      '198.51.100.1',
      '203.0.113.42',
      '224.0.0.1',
      '255.255.255.255',
      '0.1.2.3',
      '198.18.0.1',
      '192.168.1.1',
      '::1',
      '::',
      'fe80::1',
      'fc00::1',
      'fd12::1',
      'ff02::1',
      '::ffff:10.1.2.3',
      '2001:db8::1',
      '3fff::1',
      '64:ff9b:1::1',
    ]) {
      assert.equal(check(text), false, text);
    }
  });
  it('accepts ordinary public addresses', () => {
    for (const text of [
      '45.83.12.7',
      '8.8.8.8',
      '2a05:d014:ff:212::3:1',
      '2606:4700::1111',
      '172.32.0.1',
      '100.128.0.1',
    ]) {
      assert.equal(check(text), true, text);
    }
  });
});

describe('parseCidr', () => {
  it('normalises host bits and tests membership', () => {
    const parsed = parseCidr('45.83.0.77/24');
    assert.ok(parsed.ok);
    assert.equal(parsed.cidr.text, '45.83.0.0/24');
    assert.equal(parsed.hostBitsSet, true);
    const inside = parseIp('45.83.0.200');
    const outside = parseIp('45.83.1.0');
    assert.ok(inside.ok && outside.ok);
    assert.equal(cidrContains(parsed.cidr, inside.ip.key), true);
    assert.equal(cidrContains(parsed.cidr, outside.ip.key), false);
    const v6 = parseCidr('2a05:d014:ff:212::/64');
    assert.ok(v6.ok);
    assert.equal(v6.cidr.text, '2a05:d014:ff:212::/64');
    assert.equal(v6.hostBitsSet, false);
    assert.equal(parseCidr('1.2.3.4/33').ok, false);
    assert.equal(parseCidr('1.2.3.4/x').ok, false);
  });
});
