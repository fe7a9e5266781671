// How long the background appliers keep other requests waiting (decisions 0852, 0853, 0855 amendments):
// a check request due every 5 ms (in-process `inject`) while each applier drains, against the same
// checks on an idle process (the baseline, same run). SQLite's work is synchronous, so a request that
// arrives during a transaction waits for its end: the largest latency is the longest transaction.
// Then the same over TCP with the appliers running as in `vakt serve`.
// Usage: [ROUNDS=3] node --import tsx bench/drain-stall.bench.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServerProcess } from '../test/helpers/server-process.js';
import { bearer, createTestApp, type TestApp } from '../test/helpers/test-app.js';
import { intoRetentionWindow, machine, parseCowrieFiles, sharedCowrieFiles } from './lib.js';

const ROUNDS = Number(process.env.ROUNDS ?? 3);

interface Latencies {
  count: number;
  median: number;
  p99: number;
  max: number;
  drainMs: number;
}

/**
 * One check every PACE_MS (at most 20,000) until `until` settles, or for `idleMs` when it is null. A check's
 * latency runs from when it was due to its answer, so time spent waiting for the event loop counts.
 */
const PACE_MS = 5;
async function checksDuring(t: TestApp, key: string, until: Promise<unknown> | null, idleMs = 1_000) {
  let done = false;
  const started = performance.now();
  let drainMs = 0;
  until?.then(
    () => {
      done = true;
      drainMs = performance.now() - started;
    },
    () => {
      done = true;
    },
  );
  const latencies: number[] = [];
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < 20_000; i++) {
    const due = started + i * PACE_MS;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (until ? done : performance.now() - started > idleMs) break;
    inFlight.push(
      t.app.inject({ method: 'GET', url: '/v1/key/check/45.83.12.7', headers: bearer(key) }).then((res) => {
        if (res.statusCode !== 200) throw new Error(`check: HTTP ${res.statusCode} ${res.body}`);
        latencies.push(performance.now() - due);
      }),
    );
  }
  await Promise.all(inFlight);
  await until;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { count: latencies.length, median: at(0.5), p99: at(0.99), max: latencies.at(-1) ?? 0, drainMs };
}

function line(label: string, l: Latencies, withDrain: boolean) {
  const drain = withDrain ? `; drain ${l.drainMs.toFixed(0)} ms` : '';
  console.log(
    `${label.padEnd(44)} ${String(l.count).padStart(6)} checks: median ${l.median.toFixed(2)} ms, p99 ${l.p99.toFixed(1)} ms, max ${l.max.toFixed(1)} ms${drain}`,
  );
}

console.log(
  `machine: ${machine()}; load average at start ${loadavg()
    .map((n) => n.toFixed(2))
    .join(' / ')}`,
);
const files = sharedCowrieFiles();
const events = files && intoRetentionWindow(await parseCowrieFiles(files), Date.now());
if (events === null)
  console.log('sensor line skipped: shared data (honeypot/cowrie) not found; set VAKT_SHARED_DATA');

for (let round = 1; round <= ROUNDS; round++) {
  const t = await createTestApp('sqlite', { VAKT_TAXII_SCORE_MINIMUM: '10' });
  try {
    await t.app.ready();
    // Every applier runs only when the bench drains it.
    await t.services.bulkQueue.stop();
    await t.services.taxiiOutbox.stop();
    await t.services.evidence.stop();
    const key = await t.key('unlimited');
    const reporter = await t.key('unlimited');
    await t.app.inject({
      method: 'POST',
      url: '/v1/key/report',
      headers: bearer(reporter),
      payload: { ip: '45.83.12.7', category: 'port_scan' },
    });
    console.log(`round ${round}`);
    line('  baseline: idle process', await checksDuring(t, key, null), false);

    const reports = Array.from({ length: 10_000 }, (_, i) => ({
      ip: `45.${100 + round}.${Math.floor(i / 250)}.${(i % 250) + 1}`,
      category: 'brute_force',
      protocol: 'ssh',
    }));
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/key/bulk-report',
      headers: bearer(reporter),
      payload: { reports },
    });
    if (res.statusCode !== 200) throw new Error(`bulk: HTTP ${res.statusCode} ${res.body}`);
    line('  bulk queue applying 10,000 rows', await checksDuring(t, key, t.services.bulkQueue.drain()), true);
    line(
      '  TAXII outbox publishing their versions',
      await checksDuring(t, key, t.services.taxiiOutbox.drain()),
      true,
    );
    if (events) {
      for (let i = 0; i < events.length; i += 5_000) {
        await t.services.evidence.ingest(events.slice(i, i + 5_000), Date.now());
      }
      line(
        `  aggregator draining ${events.length} sensor events`,
        await checksDuring(t, key, t.services.evidence.drain()),
        true,
      );
    }
  } finally {
    await t.close();
  }
}
// Over TCP against `vakt serve` (its appliers and WAL checkpointer running): a 10,000-row bulk report, then
// 40 requests (a check, the catalog) on new connections, 10 ms apart, from the moment it was answered; the
// same 40 requests on the idle server as the baseline.
async function burstOf40(base: string, key: string): Promise<number[]> {
  const latencies = await Promise.all(
    Array.from(
      { length: 40 },
      (_, i) =>
        new Promise<number>((resolve, reject) =>
          setTimeout(async () => {
            try {
              const begin = performance.now();
              const url = i % 2 ? `${base}/v1/catalog` : `${base}/v1/key/check/45.83.12.7`;
              const res = await fetch(url, { headers: { ...bearer(key), connection: 'close' } });
              await res.arrayBuffer();
              resolve(performance.now() - begin);
            } catch (error) {
              reject(error);
            }
          }, i * 10),
        ),
    ),
  );
  return latencies.sort((a, b) => a - b);
}
const tcpLine = (label: string, l: number[]) =>
  console.log(
    `${label.padEnd(52)} median ${(l[20] ?? 0).toFixed(1)} ms, max ${(l.at(-1) ?? 0).toFixed(1)} ms, over 100 ms: ${l.filter((v) => v > 100).length} of 40`,
  );
{
  // The server in its own process (`vakt serve`, from the sources), the client here: a client in the
  // server's process would wait behind the same transactions and measure itself.
  const dir = mkdtempSync(join(tmpdir(), 'vakt-bench-stall-'));
  const server = await startServerProcess({
    VAKT_DATABASE_URL: `sqlite:${join(dir, 'vakt.db')}`,
    VAKT_TAXII_SCORE_MINIMUM: '10',
  });
  try {
    const key = /sk_unlimited_[0-9A-Za-z]+/.exec(server.output())?.[0];
    if (!key) throw new Error(`no operator key printed:\n${server.output()}`);
    // Country/ASN tables load in the background after the server starts listening: let that finish.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    console.log('over TCP (`vakt serve` in its own process, its appliers running)');
    for (let round = 1; round <= ROUNDS + 1; round++) {
      tcpLine(`  round ${round} baseline: idle server`, await burstOf40(server.url, key));
      const reports = Array.from({ length: 10_000 }, (_, i) => ({
        ip: `45.${150 + round}.${Math.floor(i / 250)}.${(i % 250) + 1}`,
        category: 'brute_force',
        protocol: 'ssh',
      }));
      const res = await fetch(`${server.url}/v1/key/bulk-report`, {
        method: 'POST',
        headers: { ...bearer(key), 'content-type': 'application/json' },
        body: JSON.stringify({ reports }),
      });
      if (res.status !== 200) throw new Error(`bulk: HTTP ${res.status} ${await res.text()}`);
      tcpLine(
        `  round ${round} after a 10,000-row bulk report${round === 1 ? ' (warm-up)' : ''}`,
        await burstOf40(server.url, key),
      );
      // The appliers finish within a couple of seconds; the next baseline starts after them.
      await new Promise((resolve) => setTimeout(resolve, 4_000));
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(
  `load average at end ${loadavg()
    .map((n) => n.toFixed(2))
    .join(' / ')}`,
);
