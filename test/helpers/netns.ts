// A throw-away network namespace for tests that load firewall rules with the real tools (never the host's own).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with an argument array (never a shell string), optionally feeding stdin. */
export function run(command: string, args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 127) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

export interface Namespace {
  readonly name: string;
  run(command: string, args: readonly string[], input?: string): Promise<RunResult>;
  /** Like run, but throws with stderr when the command fails. */
  must(command: string, args: readonly string[], input?: string): Promise<string>;
  remove(): Promise<void>;
}

/** Creates a namespace, or returns a skip reason when this machine cannot (not Linux, no root, tools missing). */
export async function createNamespace(tools: readonly string[]): Promise<Namespace | string> {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  for (const tool of ['ip', ...tools]) {
    const found = await run('sh', ['-c', 'command -v "$1"', 'sh', tool]);
    if (found.code !== 0)
      return `${tool} is not installed (apt-get install -y ipset iptables nftables iproute2)`;
  }
  const name = `vakt-test-${randomBytes(4).toString('hex')}`;
  const created = await run('ip', ['netns', 'add', name]);
  if (created.code !== 0) return `cannot create a network namespace (needs root): ${created.stderr.trim()}`;
  const inside = (command: string, args: readonly string[], input?: string) =>
    run('ip', ['netns', 'exec', name, command, ...args], input);
  return {
    name,
    run: inside,
    must: async (command, args, input) => {
      const result = await inside(command, args, input);
      if (result.code !== 0) {
        throw new Error(
          `${command} ${args.join(' ')} failed (${result.code}): ${result.stderr.slice(0, 2000)}`,
        );
      }
      return result.stdout;
    },
    remove: async () => {
      await run('ip', ['netns', 'del', name]);
    },
  };
}
