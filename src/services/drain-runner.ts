// One background drainer of a durable queue (pending marks in the database): evidence aggregation
// (decision 0630) and the TAXII outbox (decision 0852) both run on it.
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Between two transactions of a background drain: SQLite's work is synchronous, so requests that arrived
 * meanwhile run only here. A request over a socket needs a few turns of the event loop (accept, read,
 * answer); a short timer (rather than one setImmediate turn) lets those turns happen back to back instead
 * of one per transaction. Costs YIELD_MS per transaction.
 */
const YIELD_MS = 2;
export function yieldToRequests(): Promise<void> {
  return sleep(YIELD_MS);
}

export interface DrainRunnerOptions {
  /** Safety-net interval: marks left by a crashed process or another worker. */
  intervalMs?: number;
  /** After `wake()`, wait this long without another wake … */
  quietMs?: number;
  /** … but never longer than this after the first one. */
  maxLagMs?: number;
  onError?: (error: unknown) => void;
}

/**
 * Serialises drains (calls made while one runs share the next, not yet started one) and, once started,
 * runs them in the background: at once, after `wake()` once `quietMs` passed without another wake (at
 * most `maxLagMs` after the first), and every `intervalMs`. Failures go to `onError` and are retried on
 * the next wake or tick.
 */
export class DrainRunner {
  private chain: Promise<void> = Promise.resolve();
  private queued: Promise<void> | null = null;
  private runner: {
    quietMs: number;
    maxLagMs: number;
    onError: (error: unknown) => void;
    wakeTimer: NodeJS.Timeout | null;
    deadline: number;
    tick: NodeJS.Timeout;
  } | null = null;

  constructor(
    private readonly work: () => Promise<void>,
    private readonly defaults: { quietMs: number; maxLagMs: number },
  ) {}

  /** Runs the work after any drain in progress; resolves when it has run once from start to end. */
  drain(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.chain.then(() => {
      this.queued = null;
      return this.work();
    });
    this.queued = next;
    this.chain = next.catch(() => {});
    return next;
  }

  start(options: DrainRunnerOptions = {}): void {
    if (this.runner) return;
    const runner = {
      quietMs: options.quietMs ?? this.defaults.quietMs,
      maxLagMs: options.maxLagMs ?? this.defaults.maxLagMs,
      onError: options.onError ?? (() => {}),
      wakeTimer: null as NodeJS.Timeout | null,
      deadline: 0,
      tick: setInterval(() => this.background(), options.intervalMs ?? 2_000),
    };
    runner.tick.unref();
    this.runner = runner;
    this.background();
  }

  /** Stops the runner and waits for a drain in progress. */
  async stop(): Promise<void> {
    const runner = this.runner;
    this.runner = null;
    if (runner) {
      clearInterval(runner.tick);
      if (runner.wakeTimer) clearTimeout(runner.wakeTimer);
    }
    await this.chain;
  }

  /** New marks were committed: drain soon (if started). */
  wake(): void {
    const runner = this.runner;
    if (!runner) return;
    const now = Date.now();
    if (runner.wakeTimer) clearTimeout(runner.wakeTimer);
    else runner.deadline = now + runner.maxLagMs;
    runner.wakeTimer = setTimeout(
      () => {
        runner.wakeTimer = null;
        this.background();
      },
      Math.max(0, Math.min(runner.quietMs, runner.deadline - now)),
    );
    runner.wakeTimer.unref();
  }

  private background(): void {
    const runner = this.runner;
    if (!runner) return;
    this.drain().catch((error) => runner.onError(error));
  }
}
