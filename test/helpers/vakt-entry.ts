// Runs the vakt CLI from source (via tsx) so process tests need no build; cluster workers re-run this same file.
// Like bin/vakt.js it holds node's nextTick shape before the CLI's modules load (decision 0009).
import { keepNextTickShape } from '../../src/cli/tick-shape.js';

keepNextTickShape();
const { main } = await import('../../src/cli/main.js');

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(
      `vakt: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
