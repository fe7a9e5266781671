// Shared benchmark helpers: machine description, child servers, wrk and autocannon runs on loopback only.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import type { SensorEvent } from '../src/core/events.js';
import { createCowrieParser } from '../src/ingest/cowrie-parser.js';
import { readLines } from '../src/ingest/importers.js';
import { sharedDataFile } from '../test/support/shared-data.js';

const execFileAsync = promisify(execFile);

export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`;
}

export async function waitForHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not answer`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export function startChild(command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout?.resume();
  return child;
}

export interface WrkResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

function toMs(text: string): number {
  const match = /([0-9.]+)(us|ms|s)/.exec(text);
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

/** Peak throughput with wrk (one thread, `connections` keep-alive connections) against a loopback URL. */
export async function wrk(
  url: string,
  headers: Record<string, string>,
  seconds = 10,
  connections = 32,
): Promise<WrkResult> {
  if (!/^http:\/\/127\.0\.0\.1:/.test(url)) throw new Error('benchmarks target loopback only');
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  const { stdout } = await execFileAsync('wrk', [...args, url], { maxBuffer: 1 << 20 });
  const rps = Number(/Requests\/sec:\s+([0-9.]+)/.exec(stdout)?.[1]);
  const p50 = toMs(/^\s*50%\s+(\S+)/m.exec(stdout)?.[1] ?? '');
  const p99 = toMs(/^\s*99%\s+(\S+)/m.exec(stdout)?.[1] ?? '');
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  if (non2xx) throw new Error(`wrk saw ${non2xx[1]} non-2xx responses against ${url}`);
  return { requestsPerSecond: rps, p50Ms: p50, p99Ms: p99 };
}

/** Latency at a fixed request rate (autocannon's overallRate), for "p99 at half the peak". */
export async function fixedRate(
  url: string,
  headers: Record<string, string>,
  rate: number,
  seconds = 10,
): Promise<{ p50Ms: number; p99Ms: number; requestsPerSecond: number; errors: number }> {
  if (!/^http:\/\/127\.0\.0\.1:/.test(url)) throw new Error('benchmarks target loopback only');
  const result = await autocannon({ url, headers, connections: 16, overallRate: rate, duration: seconds });
  return {
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requestsPerSecond: result.requests.average,
    errors: result.errors + result.non2xx,
  };
}

/** The shared Cowrie day logs (`.gz`, sorted paths), or null when the shared data folder is absent. */
export function sharedCowrieFiles(): string[] | null {
  const dir = sharedDataFile('honeypot', 'cowrie');
  if (dir === null) return null;
  return readdirSync(dir)
    .filter((name) => name.endsWith('.gz'))
    .sort()
    .map((name) => join(dir, name));
}

/** Every event of Cowrie logs, parsed as `vakt import cowrie` parses them (no age limit). */
export async function parseCowrieFiles(files: readonly string[]): Promise<SensorEvent[]> {
  const parser = createCowrieParser({ now: Date.now(), maxAgeMs: null });
  const events: SensorEvent[] = [];
  for (const file of files) {
    for await (const line of readLines(file)) {
      const event = parser.push(line);
      if (event) events.push(event);
    }
  }
  return events;
}

/**
 * The events moved into the sensor endpoint's retention window: the newest a minute before `now`, the
 * rest spread over 20 days in their original order of time of day (the 2018 logs would be refused).
 * `newest`: the newest of the whole set, when `events` is a part of it.
 */
export function intoRetentionWindow(
  events: readonly SensorEvent[],
  now: number,
  newest = Math.max(...events.map((e) => e.ts)),
): SensorEvent[] {
  return events.map((e) => ({ ...e, ts: now - 60_000 - ((newest - e.ts) % (20 * 86_400_000)) }));
}
