#!/usr/bin/env node
// Entry point of the `vakt` binary: runs the compiled CLI (built by `npm ci` through `prepare`).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`vakt: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
