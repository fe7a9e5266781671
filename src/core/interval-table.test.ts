// Interval table look-ups: IPv4 and IPv6 bounds, gaps, unsorted input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IntervalTableBuilder, keyToBigInt } from './interval-table.js';
import { parseIp } from './ip.js';

function key(text: string): Buffer {
  const parsed = parseIp(text);
  if (!parsed.ok) throw new Error(text);
  return parsed.ip.key;
}

describe('interval table', () => {
  const builder = new IntervalTableBuilder();
  // Added out of order on purpose.
  builder.addV4(0x08080800, 0x080808ff, 2); // 8.8.8.0/24
  builder.addV4(0x01010100, 0x010101ff, 1); // 1.1.1.0/24
  builder.addV6(keyToBigInt(key('2001:db8::')), keyToBigInt(key('2001:db8::ffff')), 3);
  builder.addV6(keyToBigInt(key('2a00::')), keyToBigInt(key('2a00:ffff:ffff:ffff:ffff:ffff:ffff:ffff')), 4);
  const table = builder.build();

  it('finds the interval holding an address, bounds included', () => {
    assert.equal(table.find(key('1.1.1.0')), 1);
    assert.equal(table.find(key('1.1.1.255')), 1);
    assert.equal(table.find(key('8.8.8.8')), 2);
    assert.equal(table.find(key('2001:db8::1')), 3);
    assert.equal(table.find(key('2a00:1450::1')), 4);
    assert.equal(table.size, 4);
  });

  it('answers -1 in gaps and outside every interval', () => {
    assert.equal(table.find(key('1.1.2.0')), -1);
    assert.equal(table.find(key('0.0.0.1')), -1);
    assert.equal(table.find(key('255.255.255.255')), -1);
    assert.equal(table.find(key('2001:db8::1:0')), -1);
    assert.equal(table.find(key('::1')), -1);
    assert.equal(table.find(Buffer.alloc(3)), -1);
  });

  it('keeps IPv4 and IPv6 apart', () => {
    assert.equal(table.find(key('::ffff:8.8.8.8')), 2);
    assert.equal(new IntervalTableBuilder().build().find(key('8.8.8.8')), -1);
  });
});
