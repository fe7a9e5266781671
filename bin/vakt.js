#!/usr/bin/env node
// Entry point of the `vakt` binary: runs the compiled CLI (built by `npm ci` through `prepare`).

async function load() {
  try {
    return await import('../dist/cli/tick-shape.js');
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    process.stderr.write(
      'vakt: the compiled CLI (dist/) is missing: run `npm ci` (or `npm run build`) first\n',
    );
    process.exit(1);
  }
}

// First, before the CLI's modules load and allocate: a full GC must not find node's nextTick shape
// unused (decision 0009).
const { keepNextTickShape } = await load();
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
