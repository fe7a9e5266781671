// WAL checkpoints off the writer's thread (decision 0631): a worker thread with its own SQLite connection
// runs PASSIVE checkpoints every few hundred milliseconds, so the writer's commits (sensor ingest answers)
// no longer copy the WAL into the database and fsync it themselves. The writer keeps a raised automatic
// checkpoint as a backstop in case the background one falls behind.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';

/** WAL pages after which the writer checkpoints by itself while the background one runs (~40 MiB). */
export const BACKSTOP_AUTOCHECKPOINT_PAGES = 10_000;
const DEFAULT_AUTOCHECKPOINT_PAGES = 1_000;

// Plain CommonJS run with `eval`, so the same code works from dist and from the sources under tsx.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 0');
const checkpoint = () => {
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { /* busy or closing: the next tick retries */ }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
parentPort.postMessage('ready');
`;

export interface WalCheckpointer {
  /** Stops the thread (after one last checkpoint) and restores the writer's automatic checkpoint. */
  stop(): Promise<void>;
}

/** Starts background checkpoints of the SQLite file `path`; `writer` is the writing connection. */
export async function startWalCheckpointer(
  writer: BetterSqlite3.Database,
  path: string,
  intervalMs = 200,
): Promise<WalCheckpointer> {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, path, intervalMs } });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  // It never keeps a process alive by itself; `stop` holds it until it has exited.
  worker.unref();
  writer.pragma(`wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`);
  let stopped: Promise<void> | null = null;
  return {
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        if (writer.open) writer.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT_PAGES}`);
        worker.ref();
        worker.once('exit', () => resolve());
        worker.postMessage('stop');
      });
      return stopped;
    },
  };
}
