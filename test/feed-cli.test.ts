// `vakt import feed` and `vakt whitelist` as processes: case 011's summary through the CLI, re-import, list refresh.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/engines.js';
import { spawnVakt } from './helpers/processes.js';

describe('vakt import feed / vakt whitelist (CLI)', () => {
  let db: TestDatabase;
  let dir: string;
  const run = async (args: string[]) => {
    const p = spawnVakt(args, { VAKT_DATABASE_URL: db.url, VAKT_LOG_LEVEL: 'silent' });
    const code = await new Promise<number | null>((done) => p.child.once('exit', (c) => done(c)));
    return { code, output: p.output() };
  };

  before(async () => {
    db = await createTestDatabase('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'vakt-feed-cli-'));
    writeFileSync(
      join(dir, 'dshield.txt'),
      '# c\r\n; c\r\n45.83.12.40 \r\n45.83.12.41\t7\r\n1..218.28\r\n45.83.0.0/24\r\n10.0.0.0/8\r\n\r\nhttp://example.com/list.txt\r\n',
    );
    writeFileSync(join(dir, 'modat.txt'), '45.83.200.0/24\n# note\n');
  });
  after(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints read / accepted / rejected by reason, and a second import changes nothing (case 011)', async () => {
    const first = await run([
      'import',
      'feed',
      '--name',
      'dshield',
      '--trust',
      '0.3',
      join(dir, 'dshield.txt'),
    ]);
    assert.equal(first.code, 0, first.output);
    assert.match(first.output, /read 9, accepted 3/);
    assert.match(first.output, /rejected 3: malformed 1, non_public 1, unsupported 1, allowlisted 0/);
    assert.match(first.output, /entries 3: added 3, removed 0/);
    const again = await run([
      'import',
      'feed',
      '--name',
      'dshield',
      '--trust',
      '0.3',
      '--json',
      join(dir, 'dshield.txt'),
    ]);
    assert.equal(again.code, 0, again.output);
    const summary = JSON.parse(again.output);
    assert.deepEqual([summary.added, summary.removed, summary.rescored], [0, 0, 0]);
  });

  it('refuses a bad trust with a usage error', async () => {
    const bad = await run(['import', 'feed', '--name', 'x', '--trust', '7', join(dir, 'dshield.txt')]);
    assert.equal(bad.code, 1);
    assert.match(bad.output, /--trust is a number from 0 to 1/);
  });

  it('replaces a known source list and refuses an unknown source', async () => {
    const ok = await run(['whitelist', 'refresh', '--source', 'modat', '--file', join(dir, 'modat.txt')]);
    assert.equal(ok.code, 0, ok.output);
    assert.match(ok.output, /modat: 1 entries stored/);
    const listed = await run(['whitelist', 'list']);
    assert.match(listed.output, /modat\s+research_scanner\s+0\.25\s+1\n/);
    const unknown = await run(['whitelist', 'refresh', '--source', 'nope', '--file', join(dir, 'modat.txt')]);
    assert.equal(unknown.code, 1);
  });
});
