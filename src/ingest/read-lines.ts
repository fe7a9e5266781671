// Reads text files line by line, gunzipping those that start with the gzip magic bytes (whatever their name).
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

function isGzip(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/** Lines of a text file, gunzipped when it starts with the gzip magic bytes (whatever its name). */
export function readLines(path: string): AsyncIterable<string> {
  let stream: Readable = createReadStream(path);
  if (isGzip(path)) stream = stream.pipe(createGunzip());
  return createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
}
