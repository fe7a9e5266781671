import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readLines } from '../../test/support/read-lines.js';
import { sharedDataFile } from '../../test/support/shared-data.js';
import { createFeedParser, feedRejections, parseFeedLines } from './feed-parser.js';
import { rejectedCount } from './line-tally.js';

async function collect(lines: Iterable<string> | AsyncIterable<string>) {
  const parser = createFeedParser();
  const entries = [];
  for await (const entry of parseFeedLines(lines, parser)) entries.push(entry);
  return { entries, tally: parser.tally };
}

describe('feed parser', () => {
  it('imports the dirty feed of case 011 and counts each rejected line by reason', async () => {
    const text =
      '\uFEFF# dshield excerpt\r\n; another comment\r\n45.83.12.40 \r\n45.83.12.41\t7\r\n1..218.28\r\n45.83.0.0/24\r\n10.0.0.0/8\r\n\r\nhttp://example.com/list.txt\r\n';
    const { entries, tally } = await collect(text.split('\n'));
    assert.deepEqual(
      entries.map((e) => [e.value, e.kind, e.count, e.line]),
      [
        ['45.83.12.40', 'ip', null, 3],
        ['45.83.12.41', 'ip', 7, 4],
        ['45.83.0.0/24', 'cidr', null, 6],
      ],
    );
    assert.deepEqual(feedRejections(tally), {
      malformed: { count: 1, lines: [5] },
      non_public: { count: 1, lines: [7] },
      unsupported: { count: 1, lines: [9] },
    });
    assert.equal(tally.lines, tally.accepted + tally.ignored + rejectedCount(tally));
  });

  it('handles inline comments, IPv6, ranges, host names and CIDRs that hide private space', async () => {
    const { entries, tally } = await collect([
      '1.10.16.0/20 ; SBL256894',
      '45.83.12.9 # seen twice',
      '2A05:D014:00FF:0212::3:1',
      '::ffff:45.83.12.10',
      '45.83.0.7/24',
      '1.2.3.4-1.2.3.9',
      '45.83.12.1 - 45.83.12.9',
      '45.83.12.*',
      'evil.example.com',
      '160.0.0.0/3',
      'fd00::/8',
      '010.1.2.3',
      '45.83.12.300',
    ]);
    assert.deepEqual(
      entries.map((e) => e.value),
      ['1.10.16.0/20', '45.83.12.9', '2a05:d014:ff:212::3:1', '45.83.12.10', '45.83.0.0/24'],
    );
    assert.deepEqual(feedRejections(tally), {
      malformed: { count: 2, lines: [12, 13] },
      non_public: { count: 2, lines: [10, 11] },
      unsupported: { count: 4, lines: [6, 7, 8, 9] },
    });
  });

  it('reads the IPsum count column', async (t) => {
    const path = sharedDataFile('blocklists', 'ipsum', 'ipsum.txt');
    if (path === null) return t.skip('shared data not found (blocklists/ipsum)');
    const { entries, tally } = await collect(readLines(path));
    assert.ok(entries.length > 100_000);
    assert.ok(entries.every((e) => e.count !== null && e.count >= 1));
    assert.equal(tally.lines, tally.accepted + tally.ignored + rejectedCount(tally));
  });

  it('survives every romainmarcoux source feed, counting the malformed DShield rows', async (t) => {
    const dir = sharedDataFile('blocklists', 'romainmarcoux-malicious-ip', 'sources');
    if (dir === null) return t.skip('shared data not found (romainmarcoux sources)');
    let malformed = 0;
    for (const name of readdirSync(dir).filter((file) => file.endsWith('.txt'))) {
      const parser = createFeedParser();
      for await (const _ of parseFeedLines(readLines(join(dir, name)), parser)) {
        // drain
      }
      const { tally } = parser;
      assert.equal(tally.lines, tally.accepted + tally.ignored + rejectedCount(tally), name);
      malformed += feedRejections(tally).malformed.count;
    }
    assert.ok(malformed >= 600, `expected the ~613 malformed DShield rows, got ${malformed}`);
  });
});
