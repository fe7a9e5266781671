// Check throughput and latency (auth + quota + lookup), one process, beside two bare node:http ceilings in the
// same run: a small fixed body, and the check's own answer (same body bytes and header set) served as fixed bytes.
// Usage: node --import tsx bench/check.bench.ts [seconds]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
// Ports: vakt, small-body ceiling, same-bytes ceiling (BENCH_PORT_BASE moves all three, e.g. beside another run).
const base = Number(process.env.BENCH_PORT_BASE ?? 18081);
const [vaktPort, ceilingPort, samePort] = [base, base + 9, base + 10];
const dir = mkdtempSync(join(tmpdir(), 'vakt-bench-'));
const env = {
  VAKT_DATABASE_URL: `sqlite:${join(dir, 'vakt.db')}`,
  VAKT_PORT: String(vaktPort),
  VAKT_LOG_LEVEL: 'warn',
};

const baseline = startChild(process.execPath, ['bench/baseline-server.mjs', String(ceilingPort)]);
const vakt = startChild(process.execPath, ['bin/vakt.js', 'serve'], env);
let same: ReturnType<typeof startChild> | null = null;
let key = '';
vakt.stdout?.removeAllListeners('data');
vakt.stdout?.on('data', (chunk: Buffer) => {
  const match = /sk_unlimited_[0-9A-Za-z]+/.exec(chunk.toString());
  if (match && !key) key = match[0];
});
try {
  await waitForHttp(`http://127.0.0.1:${ceilingPort}/`);
  await waitForHttp(`http://127.0.0.1:${vaktPort}/healthz`);
  for (let i = 0; i < 50 && !key; i++) await new Promise((r) => setTimeout(r, 100));
  if (!key) throw new Error('no operator key printed');
  const auth = { authorization: `Bearer ${key}` };
  // Seed the looked-up IP with a few reports so the check reads a real record.
  for (const category of ['brute_force', 'port_scan', 'web_exploit']) {
    await fetch(`http://127.0.0.1:${vaktPort}/v1/key/report`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ ip: '45.83.12.7', category, protocol: 'ssh', comment: 'bench' }),
    });
  }
  const checkUrl = `http://127.0.0.1:${vaktPort}/v1/key/check/45.83.12.7`;
  // The second ceiling sends the check's answer as fixed bytes: same body, same header names and lengths.
  const sample = await fetch(checkUrl, { headers: auth });
  const sampleBody = await sample.text();
  const sampleHeaders: (string | number)[] = [];
  for (const name of ['x-daily-used', 'content-type', 'x-request-id']) {
    sampleHeaders.push(name, sample.headers.get(name) ?? '');
  }
  sampleHeaders.push('content-length', Buffer.byteLength(sampleBody));
  const responseFile = join(dir, 'check-response.json');
  writeFileSync(responseFile, JSON.stringify({ headers: sampleHeaders, body: sampleBody }));
  same = startChild(process.execPath, ['bench/baseline-server.mjs', String(samePort), responseFile]);
  await waitForHttp(`http://127.0.0.1:${samePort}/`);
  await wrk(checkUrl, auth, 2); // warm-up
  await wrk(`http://127.0.0.1:${ceilingPort}/`, {}, 2);
  await wrk(`http://127.0.0.1:${samePort}/`, {}, 2);
  // Interleaved rounds, medians reported: the machine is shared and its speed drifts between runs.
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const runs: { ceiling: WrkResult; sameBytes: WrkResult; check: WrkResult; terse: WrkResult }[] = [];
  for (let round = 0; round < rounds; round++) {
    const ceiling = await wrk(`http://127.0.0.1:${ceilingPort}/`, {}, seconds);
    const sameBytes = await wrk(`http://127.0.0.1:${samePort}/`, {}, seconds);
    const check = await wrk(checkUrl, auth, seconds);
    const terse = await wrk(`${checkUrl}?verbose=false`, auth, seconds);
    runs.push({ ceiling, sameBytes, check, terse });
    console.log(
      `round ${round + 1}: ceiling ${Math.round(ceiling.requestsPerSecond)}, same-bytes ceiling ${Math.round(sameBytes.requestsPerSecond)}, check ${Math.round(check.requestsPerSecond)} (${share(check, ceiling)} / ${share(check, sameBytes)}), terse ${Math.round(terse.requestsPerSecond)} (${share(terse, ceiling)})`,
    );
  }
  const ceiling = medianRun(runs.map((r) => r.ceiling));
  const sameBytes = medianRun(runs.map((r) => r.sameBytes));
  const check = medianRun(runs.map((r) => r.check));
  const terse = medianRun(runs.map((r) => r.terse));
  const half = await fixedRate(checkUrl, auth, Math.round(check.requestsPerSecond / 2), seconds);
  const rows = [
    [
      'bare node:http, small fixed body (ceiling)',
      ceiling.requestsPerSecond,
      ceiling.p50Ms,
      ceiling.p99Ms,
      '100%',
    ],
    [
      `bare node:http, the check's ${Buffer.byteLength(sampleBody)}-byte answer as fixed bytes`,
      sameBytes.requestsPerSecond,
      sameBytes.p50Ms,
      sameBytes.p99Ms,
      share(sameBytes, ceiling),
    ],
    [
      'GET /v1/key/check (verbose)',
      check.requestsPerSecond,
      check.p50Ms,
      check.p99Ms,
      `${share(check, ceiling)} (${share(check, sameBytes)} of same-bytes)`,
    ],
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
  same?.kill();
  vakt.kill();
  rmSync(dir, { recursive: true, force: true });
}
