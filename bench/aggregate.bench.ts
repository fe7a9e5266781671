// Times exact CIDR aggregation of ~350,000 real IPv4 addresses against Debian's `iprange` on the same input.
// Run: node --import tsx bench/aggregate.bench.ts [count]   (needs ../shared/data; `apt-get install -y iprange`)

import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { aggregate, buildRangeSet, toCidrTexts } from '../src/core/cidr-aggregate.js';
import { sharedDataPath } from '../test/support/shared-data.js';

const run = promisify(execFile);
const count = Number(process.argv[2] ?? 350_000);
const dataDir = sharedDataPath('blocklists/romainmarcoux-malicious-ip');
if (!dataDir) {
  console.log('skipped: ../shared/data/blocklists/romainmarcoux-malicious-ip is absent');
  process.exit(0);
}
const files = readdirSync(dataDir)
  .filter((name) => /^full-a[a-z]\.txt$/.test(name))
  .sort();
const lines: string[] = [];
for (const file of files) {
  for (const line of readFileSync(join(dataDir, file), 'utf8').split('\n')) {
    if (line.trim() !== '') lines.push(line.trim());
    if (lines.length >= count) break;
  }
  if (lines.length >= count) break;
}
console.log(`input: ${lines.length} lines from ${files.join(', ')}`);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

// Vakt: in-process, from an array of strings to an array of CIDR texts (what the services hold).
let ours: string[] = [];
const oursTimes: number[] = [];
for (let i = 0; i < 7; i++) {
  const start = performance.now();
  ours = aggregate(lines).map((cidr) => cidr.text);
  oursTimes.push(performance.now() - start);
}
console.log(
  `vakt aggregate:  median ${median(oursTimes).toFixed(1)} ms, first (cold) ${(oursTimes[0] ?? 0).toFixed(1)} ms, ${ours.length} CIDRs`,
);

// Text only (no objects), as a plaintext or firewall writer would consume it.
const textTimes: number[] = [];
for (let i = 0; i < 7; i++) {
  const start = performance.now();
  const texts = toCidrTexts(buildRangeSet(lines));
  textTimes.push(performance.now() - start);
  if (texts.length !== ours.length) throw new Error('toCidrTexts disagrees with aggregate');
}
console.log(`vakt aggregate to text only: median ${median(textTimes).toFixed(1)} ms`);

// The same without producing strings: parse, sort, merge (what subtract() and counting need).
const setTimes: number[] = [];
for (let i = 0; i < 7; i++) {
  const start = performance.now();
  buildRangeSet(lines);
  setTimes.push(performance.now() - start);
}
console.log(`vakt range set only (no output text): median ${median(setTimes).toFixed(1)} ms`);

// iprange: a separate process reading a file, so its time includes start-up and file I/O.
const dir = mkdtempSync(join(tmpdir(), 'vakt-bench-'));
try {
  const input = join(dir, 'input.txt');
  writeFileSync(input, `${lines.join('\n')}\n`);
  let theirs: string[] = [];
  const theirTimes: number[] = [];
  try {
    for (let i = 0; i < 7; i++) {
      const start = performance.now();
      const { stdout } = await run('iprange', ['--optimize', input], { maxBuffer: 64 * 1024 * 1024 });
      theirTimes.push(performance.now() - start);
      theirs = stdout.split('\n').filter((line) => line !== '');
    }
    console.log(
      `iprange (process): median ${median(theirTimes).toFixed(1)} ms, ${theirs.length} CIDRs (includes exec and file read)`,
    );
    const same = theirs.length === ours.length && theirs.every((text, index) => text === ours[index]);
    console.log(same ? 'outputs identical' : 'OUTPUTS DIFFER');
    if (!same) process.exitCode = 1;
  } catch (error) {
    console.log(
      `iprange not runnable (${(error as Error).message}); install with apt-get install -y iprange`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
