// wholeFileLines gives exactly readLines' lines (the Cowrie worker uses it; line text feeds the event ids).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { sharedDataFile } from '../../test/support/shared-data.js';
import { readLines, WHOLE_FILE_MAX_BYTES, wholeFileLines } from './read-lines.js';

async function streamed(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const line of readLines(path)) out.push(line);
  return out;
}

describe('wholeFileLines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vakt-lines-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const samples: Record<string, string> = {
    empty: '',
    newline: '\n',
    'no final break': 'a\nb',
    'final break': 'a\nb\n',
    crlf: 'a\r\nb\r\n\r\nc',
    'lone cr': 'a\rb\r\rc\r',
    mixed: 'a\r\r\nb\n\rc\r\n',
    blanks: '\n\n x \n\t\n',
    unicode: 'ä€😀\nβ\r\nend',
  };

  for (const [name, text] of Object.entries(samples)) {
    it(`splits like readline: ${name} (plain and gzip)`, async () => {
      const plain = join(dir, `${name}.txt`);
      const gz = join(dir, `${name}.gz`);
      writeFileSync(plain, text);
      writeFileSync(gz, gzipSync(Buffer.from(text)));
      assert.deepEqual(wholeFileLines(plain), await streamed(plain));
      assert.deepEqual(wholeFileLines(gz), await streamed(gz));
    });
  }

  it('leaves files larger than the bound to the stream', () => {
    const big = join(dir, 'big.txt');
    writeFileSync(big, Buffer.alloc(WHOLE_FILE_MAX_BYTES + 1, 0x61));
    assert.equal(wholeFileLines(big), null);
  });

  it('gives the same lines as readline for every shared Cowrie log', async (t) => {
    const logs = sharedDataFile('honeypot', 'cowrie');
    if (logs === null) return t.skip('shared data not found');
    for (const name of readdirSync(logs).filter((file) => file.endsWith('.gz'))) {
      const path = join(logs, name);
      assert.deepEqual(wholeFileLines(path), await streamed(path), name);
    }
  });
});
