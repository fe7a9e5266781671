// Background jobs that run once per interval cluster-wide (SPEC §13): retention now; alerts and feed pulls register later.
import type { Clock } from '../core/time.js';
import { withPostgresAdvisoryLock } from '../store/advisory-lock.js';
import type { Store } from '../store/store.js';

export interface Job {
  /** Unique and stable: it names the lock and the "last run" marker in `settings`. */
  readonly name: string;
  /** The job runs at most once per interval across every instance sharing the database. */
  readonly intervalMs: number;
  run(now: number): Promise<unknown>;
}

export type JobOutcome = 'ran' | 'not_due' | 'busy';

export interface JobLog {
  info(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

const silentLog: JobLog = { info: () => {}, error: () => {} };

/**
 * Runs registered jobs when due. Exclusion: on PostgreSQL a session advisory lock per job, so one
 * instance in the cluster runs it at a time; on SQLite an in-process flag (with `--workers` only the
 * primary process runs jobs). Due-ness is a `job:<name>:last_run` row in `settings`, claimed in one
 * transaction before the job runs, so N instances ticking together still run a daily job once a day.
 */
export class JobRunner {
  private readonly jobs = new Map<string, Job>();
  private readonly running = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private log: JobLog = silentLog,
  ) {}

  /** Logs to `log` from now on (a server hands over its logger once it has one). */
  useLog(log: JobLog): void {
    this.log = log;
  }

  register(job: Job): void {
    if (this.jobs.has(job.name)) throw new Error(`job ${job.name} is already registered`);
    this.jobs.set(job.name, job);
  }

  /** Checks every job now and then every `tickMs`; failures are logged and retried next tick. */
  start(tickMs = 60_000): void {
    if (this.timer) return;
    const tick = () => {
      this.inFlight = this.runDue().catch(() => {});
    };
    tick();
    this.timer = setInterval(tick, tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
  }

  /** Runs every due job once, one after the other. */
  async runDue(): Promise<Record<string, JobOutcome>> {
    const outcomes: Record<string, JobOutcome> = {};
    for (const name of this.jobs.keys()) {
      try {
        outcomes[name] = await this.runIfDue(name);
      } catch (error) {
        this.log.error({ err: error, job: name }, 'background job failed');
      }
    }
    return outcomes;
  }

  /** Runs job `name` if it is due and no one else is running it; `force` ignores due-ness. */
  async runIfDue(name: string, force = false): Promise<JobOutcome> {
    const job = this.jobs.get(name);
    if (!job) throw new Error(`no job named ${name}`);
    if (this.running.has(name)) return 'busy';
    this.running.add(name);
    try {
      const attempt = () => this.runWhenDue(job, force);
      if (this.store.dialect === 'postgres') {
        const locked = await withPostgresAdvisoryLock(this.store.db, `vakt-job:${name}`, attempt);
        return locked.acquired ? locked.result : 'busy';
      }
      return await attempt();
    } finally {
      this.running.delete(name);
    }
  }

  private async runWhenDue(job: Job, force: boolean): Promise<JobOutcome> {
    const marker = `job:${job.name}:last_run`;
    const now = this.clock.now();
    // Claim the run by writing the marker first, in one transaction (SQLite: BEGIN IMMEDIATE, so two
    // processes on one file cannot both claim; PostgreSQL: already exclusive under the advisory lock).
    const previous = await this.store.transaction(async (tx) => {
      const row = await tx
        .selectFrom('settings')
        .select('value')
        .where('name', '=', marker)
        .executeTakeFirst();
      if (!force && row && now - Number(row.value) < job.intervalMs) return 'not_due' as const;
      await tx
        .insertInto('settings')
        .values({ name: marker, value: String(now) })
        .onConflict((oc) => oc.column('name').doUpdateSet({ value: String(now) }))
        .execute();
      return row?.value ?? null;
    });
    if (previous === 'not_due') return 'not_due';
    const started = Date.now();
    try {
      const result = await job.run(now);
      this.log.info({ job: job.name, result, ms: Date.now() - started }, 'background job ran');
      return 'ran';
    } catch (error) {
      // Give the claim back so the next tick retries instead of waiting a whole interval.
      const restore = this.store.db.deleteFrom('settings').where('name', '=', marker);
      await (previous === null
        ? restore.execute()
        : this.store.db.updateTable('settings').set({ value: previous }).where('name', '=', marker).execute()
      ).catch(() => {});
      throw error;
    }
  }
}
