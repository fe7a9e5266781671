// `vakt <command> --help` prints that command's usage and touches nothing (SPEC §10).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CLI, runCli } from './helpers/server-process.js';

const dir = mkdtempSync(join(tmpdir(), 'vakt-cli-help-'));
const database = join(dir, 'vakt.db');
const env = { VAKT_DATABASE_URL: `sqlite:${database}` };

describe('vakt <command> --help', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [command, expected] of [
    ['serve', /^usage: vakt serve \[--workers N\]/],
    ['migrate', /^usage: vakt migrate/],
    ['keys', /^usage:\n {2}vakt keys create --tier/],
    ['purge', /^usage: vakt purge \[--dry-run\] \[--json\][\s\S]*--dry-run/],
    ['whitelist', /^usage: vakt whitelist list\n {7}vakt whitelist refresh --source NAME/],
    ['whitelist list', /^usage: vakt whitelist list/],
    ['whitelist refresh', /^usage: vakt whitelist list[\s\S]*next start/],
  ] as const) {
    it(`${command} --help prints its own usage, exits 0 and opens no database`, async () => {
      const result = await runCli([...command.split(' '), '--help'], env);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, expected);
      assert.doesNotMatch(result.stdout, /IP reputation and threat intelligence/);
      assert.equal(existsSync(database), false);
    });
  }

  it('--help alone prints the overview', async () => {
    const result = await runCli(['--help'], env);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /vakt purge \[--dry-run\]/);
  });

  it('ends quietly when the reader of its output goes away (`vakt … | head`)', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, '--help'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy(); // the read end closes before the CLI writes: its write fails with EPIPE
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });

  it('says to build first when the compiled CLI is missing', () => {
    const bare = join(dir, 'unbuilt');
    mkdirSync(join(bare, 'bin'), { recursive: true });
    copyFileSync(join(process.cwd(), 'bin', 'vakt.js'), join(bare, 'bin', 'vakt.js'));
    writeFileSync(join(bare, 'package.json'), '{"type": "module"}');
    const result = spawnSync(process.execPath, [join(bare, 'bin', 'vakt.js'), '--help'], {
      encoding: 'utf8',
    });
    assert.equal(result.status, 1);
    assert.equal(
      result.stderr,
      'vakt: the compiled CLI (dist/) is missing: run `npm ci` (or `npm run build`) first\n',
    );
  });
});
