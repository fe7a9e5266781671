// feedSegments: one set of listing feeds per segment, split at listing edges and extra cut points.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildRangeSet, RangeLookup } from './cidr-aggregate.js';
import { type FeedRange, feedSegments } from './feed-segments.js';

const range = (feed: string, first: number, last: number, listedAt = 1, trust = 1): FeedRange => ({
  feed,
  trust,
  first: BigInt(first),
  last: BigInt(last),
  listedAt,
});

describe('feedSegments', () => {
  it('splits overlapping listings into segments with their feeds, each feed once', () => {
    const segments = feedSegments([
      range('a', 0, 255, 5),
      range('b', 0, 127, 7),
      range('a', 64, 127, 3),
      range('c', 1000, 1001),
    ]);
    assert.deepEqual(
      segments.map((s) => [Number(s.first), Number(s.last), s.feeds.map((f) => `${f.name}@${f.listedAt}`)]),
      [
        [0, 63, ['a@5', 'b@7']],
        [64, 127, ['a@3', 'b@7']],
        [128, 255, ['a@5']],
        [1000, 1001, ['c@1']],
      ],
    );
  });

  it('starts a new segment at every cut point inside the covered space only', () => {
    const segments = feedSegments([range('a', 10, 19)], [5n, 12n, 15n, 25n]);
    assert.deepEqual(
      segments.map((s) => [Number(s.first), Number(s.last)]),
      [
        [10, 11],
        [12, 14],
        [15, 19],
      ],
    );
  });

  it('is empty without listings', () => {
    assert.deepEqual(feedSegments([], [1n]), []);
  });
});

describe('RangeLookup', () => {
  it('answers membership for address text and keys, IPv4 and IPv6', () => {
    const lookup = new RangeLookup(buildRangeSet(['46.1.0.0/25', '2a05:d014:ff:212::/64', '9.9.9.9']));
    for (const ip of ['46.1.0.0', '46.1.0.127', '9.9.9.9', '2a05:d014:ff:212::5'])
      assert.ok(lookup.hasLine(ip), ip);
    for (const ip of ['46.1.0.128', '9.9.9.8', '2a05:d014:ff:213::', 'junk'])
      assert.ok(!lookup.hasLine(ip), ip);
    assert.ok(new RangeLookup(buildRangeSet([])).empty);
  });
});
