// Parses Cowrie log files off the main thread (gunzip, JSON, validation, stable ids) and posts events in
// batches, so that parsing overlaps the store's work during `vakt import cowrie`. Flow control: at most
// MAX_UNACKED batches wait for the importer at any time.
import { parentPort, workerData } from 'node:worker_threads';
import type { SensorEvent } from '../core/events.js';
import { createCowrieParser } from './cowrie-parser.js';
import type { LineTally } from './line-tally.js';
import { readLines, wholeFileLines } from './read-lines.js';

export interface CowrieWorkerInput {
  files: string[];
  now: number;
}

export type CowrieWorkerMessage =
  | { kind: 'events'; events: SensorEvent[]; read: number }
  | { kind: 'done'; tally: LineTally; read: number }
  | { kind: 'error'; message: string };

export const EVENTS_PER_MESSAGE = 2_000;
const MAX_UNACKED = 8;

async function run(port: NonNullable<typeof parentPort>, input: CowrieWorkerInput): Promise<void> {
  const parser = createCowrieParser({ now: input.now, maxAgeMs: null });
  let unacked = 0;
  let wake: (() => void) | null = null;
  port.on('message', () => {
    unacked--;
    wake?.();
    wake = null;
  });
  let batch: SensorEvent[] = [];
  const send = async () => {
    const message: CowrieWorkerMessage = { kind: 'events', events: batch, read: parser.tally.lines };
    port.postMessage(message);
    batch = [];
    unacked++;
    while (unacked >= MAX_UNACKED) await new Promise<void>((resolve) => (wake = resolve));
  };
  /** Parses one line; true when the batch is full. */
  const take = (line: string): boolean => {
    const event = parser.push(line);
    if (event === null) return false;
    batch.push(event);
    return batch.length >= EVENTS_PER_MESSAGE;
  };
  for (const file of input.files) {
    // Daily logs are small: read whole (no stream and readline per line); large ones streamed.
    const whole = wholeFileLines(file);
    if (whole) {
      for (const line of whole) if (take(line)) await send();
    } else {
      for await (const line of readLines(file)) if (take(line)) await send();
    }
  }
  if (batch.length > 0) await send();
  const done: CowrieWorkerMessage = { kind: 'done', tally: parser.tally, read: parser.tally.lines };
  port.postMessage(done);
}

if (parentPort) {
  const port = parentPort;
  run(port, workerData as CowrieWorkerInput).then(
    () => port.close(),
    (error: unknown) => {
      const message: CowrieWorkerMessage = {
        kind: 'error',
        message: error instanceof Error ? error.message : String(error),
      };
      port.postMessage(message);
      port.close();
    },
  );
}
