// Check throughput as instances scale: SQLite 1 and 2 workers, PostgreSQL+Redis 1 and 2 workers, beside the bare node:http ceiling.
// Usage: npm run build && node --import tsx bench/check-cluster.bench.ts [seconds]
// Needs PostgreSQL (VAKT_BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres) and Redis
// (VAKT_BENCH_REDIS_URL, default redis://127.0.0.1:6379/14); a fresh database is created and dropped.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { machine, startChild, waitForHttp, wrk } from './lib.js';

const seconds = Number(process.argv[2] ?? 8);
const adminUrl = process.env.VAKT_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.VAKT_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/14';
const benchEnv = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !name.startsWith('VAKT_')),
);

async function admin(statement: string) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

interface Target {
  name: string;
  workers: number;
  env: Record<string, string>;
}

/** Starts `vakt serve` on a fresh store, seeds one IP, measures the check route, stops it. */
async function measure(target: Target, port: number) {
  const env = { ...target.env, VAKT_PORT: String(port), VAKT_LOG_LEVEL: 'warn' };
  const args = ['bin/vakt.js', 'serve', ...(target.workers > 1 ? ['--workers', String(target.workers)] : [])];
  const child: ChildProcess = startChild(process.execPath, args, { ...benchEnv, ...env });
  let key = '';
  child.stdout?.removeAllListeners('data');
  child.stdout?.on('data', (chunk: Buffer) => {
    const match = /sk_unlimited_[0-9A-Za-z]+/.exec(chunk.toString());
    if (match && !key) key = match[0];
  });
  try {
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000);
    for (let i = 0; i < 100 && !key; i++) await new Promise((r) => setTimeout(r, 100));
    if (!key) throw new Error(`${target.name}: no operator key printed`);
    const auth = { authorization: `Bearer ${key}` };
    for (const category of ['brute_force', 'port_scan', 'web_exploit']) {
      await fetch(`http://127.0.0.1:${port}/v1/key/report`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ ip: '45.83.12.7', category, protocol: 'ssh' }),
      });
    }
    const url = `http://127.0.0.1:${port}/v1/key/check/45.83.12.7`;
    await wrk(url, auth, 2);
    return await wrk(url, auth, seconds);
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'vakt-bench-cluster-'));
const databases: string[] = [];
const baseline = startChild(process.execPath, ['bench/baseline-server.mjs', '18190']);
try {
  await waitForHttp('http://127.0.0.1:18190/');
  await wrk('http://127.0.0.1:18190/', {}, 2);
  const ceiling = await wrk('http://127.0.0.1:18190/', {}, seconds);
  baseline.kill();

  const postgresFor = async () => {
    const name = `vakt_bench_${randomBytes(4).toString('hex')}`;
    await admin(`create database ${name}`);
    databases.push(name);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return url.toString();
  };
  const targets: Target[] = [
    { name: 'SQLite, 1 process', workers: 1, env: { VAKT_DATABASE_URL: `sqlite:${join(dir, 'a.db')}` } },
    { name: 'SQLite, --workers 2', workers: 2, env: { VAKT_DATABASE_URL: `sqlite:${join(dir, 'b.db')}` } },
    {
      name: 'PostgreSQL+Redis, 1 process',
      workers: 1,
      env: { VAKT_DATABASE_URL: await postgresFor(), VAKT_REDIS_URL: redisUrl },
    },
    {
      name: 'PostgreSQL+Redis, --workers 2',
      workers: 2,
      env: { VAKT_DATABASE_URL: await postgresFor(), VAKT_REDIS_URL: redisUrl },
    },
  ];
  const results: { target: Target; rps: number; p50: number; p99: number }[] = [];
  let port = 18191;
  for (const target of targets) {
    const result = await measure(target, port++);
    results.push({ target, rps: result.requestsPerSecond, p50: result.p50Ms, p99: result.p99Ms });
  }
  console.log(`machine: ${machine()}`);
  console.log(`wrk -t1 -c32 -d${seconds}s against GET /v1/key/check/45.83.12.7 (verbose, unlimited key)`);
  console.log('| target | req/s | p50 ms | p99 ms | of ceiling | 1 → 2 workers |');
  console.log('|---|---:|---:|---:|---:|---:|');
  console.log(
    `| bare node:http, 1 process (ceiling) | ${Math.round(ceiling.requestsPerSecond)} | ${ceiling.p50Ms.toFixed(2)} | ${ceiling.p99Ms.toFixed(2)} | 100% | |`,
  );
  results.forEach((r, i) => {
    const single = r.target.workers > 1 ? results[i - 1] : undefined;
    const scale = single ? `×${(r.rps / single.rps).toFixed(2)}` : '';
    const share = `${((100 * r.rps) / ceiling.requestsPerSecond).toFixed(0)}%`;
    console.log(
      `| ${r.target.name} | ${Math.round(r.rps)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${share} | ${scale} |`,
    );
  });
} finally {
  baseline.kill();
  rmSync(dir, { recursive: true, force: true });
  for (const name of databases) await admin(`drop database if exists ${name} with (force)`).catch(() => {});
}
