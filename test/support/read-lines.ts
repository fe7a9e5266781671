// Streams a text file (optionally gzip) line by line for parser tests.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';

export function readLines(path: string): AsyncIterable<string> {
  const stream = createReadStream(path);
  const input = path.endsWith('.gz') ? stream.pipe(createGunzip()) : stream;
  return createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
}
