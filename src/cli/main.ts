// The `vakt` command line: dispatches to one command module per verb (SPEC §10).
import { ConfigError, loadConfig } from '../config/config.js';
import { migrateToLatest, openDatabase } from '../store/open-database.js';
import { importCommand } from './import-command.js';
import { KEYS_USAGE, keysCommand } from './keys-command.js';
import { printError, printLine, UsageError } from './output.js';
import { purgeCommand } from './purge-command.js';
import { serveCommand } from './serve-command.js';
import { WHITELIST_HELP, whitelistCommand } from './whitelist-command.js';

const HELP = `vakt — IP reputation and threat intelligence

Server:
  vakt serve [--workers N]   start the API server (VAKT_* environment variables configure it);
                             --workers forks N processes sharing the port
  vakt migrate               bring the database schema up to date
  vakt keys create|list|disable|rotate   manage API keys
  vakt import <cowrie|auth-log|fail2ban-log|reports-csv> <file…>   import logs as evidence
  vakt import feed --name N --trust W FILE…   import a third-party blocklist as a feed
  vakt whitelist list|refresh               show or replace known-benign source lists
  vakt purge [--dry-run] [--json]        run retention now and report what was removed

Every command prints its own usage with --help (e.g. vakt purge --help).`;

/** Usage texts printed by `vakt <command> … --help`; import prints its own (one per kind). */
const COMMAND_HELP: Record<string, string> = {
  serve: `usage: vakt serve [--workers N]
  Starts the API server on VAKT_HOST:VAKT_PORT (default 127.0.0.1:8080) with the database in
  VAKT_DATABASE_URL (default sqlite:./data/vakt.db). On an empty database it creates one unlimited
  operator key and prints it once. --workers N forks N processes sharing the port.`,
  migrate: `usage: vakt migrate
  Brings the database in VAKT_DATABASE_URL up to the latest schema and lists what it applied.`,
  keys: KEYS_USAGE,
  whitelist: WHITELIST_HELP,
  purge: `usage: vakt purge [--dry-run] [--json]
  Runs the retention job now (VAKT_RETENTION_DAYS): removes raw telemetry, reputations and username or
  e-mail lookups older than the window, and prints what it removed.
  --dry-run   count what would be removed, delete nothing
  --json      print the result as JSON`,
};

async function migrateCommand(): Promise<number> {
  const config = loadConfig();
  const database = openDatabase(config.databaseUrl, config.databasePoolSize);
  try {
    const applied = await migrateToLatest(database);
    printLine(applied.length === 0 ? 'The schema is up to date.' : `Applied: ${applied.join(', ')}`);
    return 0;
  } finally {
    await database.close();
  }
}

/**
 * Output piped into a reader that stops early (`vakt import … | head`) is not an error: the rest is not
 * wanted. Any other failure to write standard output ends the process with a message, not a stack trace.
 */
let stdoutGuarded = false;
function quietOnClosedStdout(): void {
  if (stdoutGuarded) return;
  stdoutGuarded = true;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    process.stderr.write(`vakt: cannot write to standard output: ${error.message}\n`);
    process.exit(1);
  });
}

export async function main(argv: string[]): Promise<number> {
  quietOnClosedStdout();
  const [command, ...rest] = argv;
  // Commands without a usage text of their own must never act on --help (e.g. migrate).
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  if (wantsHelp && command !== 'import') {
    printLine(COMMAND_HELP[command ?? ''] ?? HELP);
    return 0;
  }
  try {
    switch (command) {
      case 'serve':
        return await serveCommand(rest);
      case 'migrate':
        return await migrateCommand();
      case 'keys':
        return await keysCommand(rest);
      case 'import':
        return await importCommand(rest);
      case 'whitelist':
        return await whitelistCommand(rest);
      case 'purge':
        return await purgeCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        printLine(HELP);
        return command === undefined ? 1 : 0;
      default:
        printError(`unknown command "${command}"\n\n${HELP}`);
        return 1;
    }
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) {
      printError(error.message);
      return 1;
    }
    throw error;
  }
}
