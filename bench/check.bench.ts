// Check throughput and latency (auth + quota + lookup), one process, beside a bare node:http ceiling in the same run.
// Usage: node --import tsx bench/check.bench.ts [seconds]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixedRate, machine, startChild, type WrkResult, waitForHttp, wrk } from './lib.js';

const share = (run: WrkResult, ceiling: WrkResult) =>
  `${((100 * run.requestsPerSecond) / ceiling.requestsPerSecond).toFixed(0)}%`;

/** The run with the median throughput (its latencies come with it). */
function medianRun(runs: WrkResult[]): WrkResult {
  const sorted = [...runs].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond);
  const middle = sorted[Math.floor((sorted.length - 1) / 2)];
  if (!middle) throw new Error('no runs');
  return middle;
}

const seconds = Number(process.argv[2] ?? 10);
const dir = mkdtempSync(join(tmpdir(), 'vakt-bench-'));
const env = {
  VAKT_DATABASE_URL: `sqlite:${join(dir, 'vakt.db')}`,
  VAKT_PORT: '18081',
  VAKT_LOG_LEVEL: 'warn',
};

const baseline = startChild(process.execPath, ['bench/baseline-server.mjs', '18090']);
const vakt = startChild(process.execPath, ['bin/vakt.js', 'serve'], env);
let key = '';
vakt.stdout?.removeAllListeners('data');
vakt.stdout?.on('data', (chunk: Buffer) => {
  const match = /sk_unlimited_[0-9A-Za-z]+/.exec(chunk.toString());
  if (match && !key) key = match[0];
});
try {
  await waitForHttp('http://127.0.0.1:18090/');
  await waitForHttp('http://127.0.0.1:18081/healthz');
  for (let i = 0; i < 50 && !key; i++) await new Promise((r) => setTimeout(r, 100));
  if (!key) throw new Error('no operator key printed');
  const auth = { authorization: `Bearer ${key}` };
  // Seed the looked-up IP with a few reports so the check reads a real record.
  for (const category of ['brute_force', 'port_scan', 'web_exploit']) {
    await fetch('http://127.0.0.1:18081/v1/key/report', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ ip: '45.83.12.7', category, protocol: 'ssh', comment: 'bench' }),
    });
  }
  const checkUrl = 'http://127.0.0.1:18081/v1/key/check/45.83.12.7';
  await wrk(checkUrl, auth, 2); // warm-up
  await wrk('http://127.0.0.1:18090/', {}, 2);
  // Interleaved rounds, medians reported: the machine is shared and its speed drifts between runs.
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const runs: { ceiling: WrkResult; check: WrkResult; terse: WrkResult }[] = [];
  for (let round = 0; round < rounds; round++) {
    const ceiling = await wrk('http://127.0.0.1:18090/', {}, seconds);
    const check = await wrk(checkUrl, auth, seconds);
    const terse = await wrk(`${checkUrl}?verbose=false`, auth, seconds);
    runs.push({ ceiling, check, terse });
    console.log(
      `round ${round + 1}: ceiling ${Math.round(ceiling.requestsPerSecond)}, check ${Math.round(check.requestsPerSecond)} (${share(check, ceiling)}), terse ${Math.round(terse.requestsPerSecond)} (${share(terse, ceiling)})`,
    );
  }
  const ceiling = medianRun(runs.map((r) => r.ceiling));
  const check = medianRun(runs.map((r) => r.check));
  const terse = medianRun(runs.map((r) => r.terse));
  const half = await fixedRate(checkUrl, auth, Math.round(check.requestsPerSecond / 2), seconds);
  const rows = [
    ['bare node:http (ceiling)', ceiling.requestsPerSecond, ceiling.p50Ms, ceiling.p99Ms, '100%'],
    ['GET /v1/key/check (verbose)', check.requestsPerSecond, check.p50Ms, check.p99Ms, share(check, ceiling)],
    [
      'GET /v1/key/check?verbose=false',
      terse.requestsPerSecond,
      terse.p50Ms,
      terse.p99Ms,
      share(terse, ceiling),
    ],
  ] as const;
  console.log(`machine: ${machine()}`);
  console.log(
    `wrk -t1 -c32 -d${seconds}s, ${rounds} interleaved rounds (medians); fixed-rate run with autocannon`,
  );
  console.log('| target | req/s | p50 ms | p99 ms | of ceiling |');
  console.log('|---|---:|---:|---:|---:|');
  for (const [name, rps, p50, p99, pct] of rows) {
    console.log(`| ${name} | ${Math.round(rps)} | ${p50.toFixed(2)} | ${p99.toFixed(2)} | ${pct} |`);
  }
  console.log(
    `| check at half peak (${Math.round(check.requestsPerSecond / 2)} req/s fixed) | ${Math.round(half.requestsPerSecond)} | ${half.p50Ms.toFixed(2)} | ${half.p99Ms.toFixed(2)} | errors: ${half.errors} |`,
  );
} finally {
  baseline.kill();
  vakt.kill();
  rmSync(dir, { recursive: true, force: true });
}
