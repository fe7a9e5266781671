#!/usr/bin/env node
// Entry point of the `vakt` binary: runs the compiled CLI (built by `npm ci` through `prepare`).
import { keepNextTickShape } from '../dist/cli/tick-shape.js';

// First, before the CLI's modules load and allocate: a full GC must not find node's nextTick shape
// unused (decision 0009).
keepNextTickShape();
const { main } = await import('../dist/cli/main.js');

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`vakt: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
