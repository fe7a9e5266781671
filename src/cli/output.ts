// Output helpers for CLI commands: data to stdout, problems to stderr (SPEC §10).

export function printJson(value: unknown) {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(text = '') {
  process.stdout.write(`${text}\n`);
}

export function printError(text: string) {
  process.stderr.write(`vakt: ${text}\n`);
}

/** Left-aligned columns for list output. */
export function printTable(rows: string[][]) {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  for (const row of rows)
    printLine(
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    );
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
