// Layering rules of ARCHITECTURE.md: imports point one way only.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const SRC = resolve('src');
const ALLOWED: Record<string, string[]> = {
  core: ['core'],
  config: ['config', 'core'],
  store: ['store', 'core'],
  quota: ['quota', 'core', 'store'],
  services: ['services', 'core', 'store', 'quota', 'config'],
  http: ['http', 'services', 'core', 'config', 'quota', 'store'],
  ingest: ['ingest', 'services', 'core', 'config', 'store', 'quota'],
  cli: ['cli', 'http', 'services', 'ingest', 'core', 'config', 'quota', 'store', 'sensor', 'guard', 'client'],
  sensor: ['sensor', 'core', 'client'],
  guard: ['guard', 'core', 'client'],
  client: ['client', 'core'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory()
      ? files(path)
      : path.endsWith('.ts') && !path.endsWith('.test.ts')
        ? [path]
        : [];
  });
}

describe('architecture', () => {
  it('keeps every import inside the layers its folder may use', () => {
    const problems: string[] = [];
    for (const file of files(SRC)) {
      const layer = relative(SRC, file).split('/')[0] ?? '';
      const allowed = ALLOWED[layer];
      if (!allowed) {
        problems.push(`${relative(SRC, file)}: folder "${layer}" has no layering rule`);
        continue;
      }
      const source = readFileSync(file, 'utf8');
      for (const match of source.matchAll(/from '(\.[^']+)'/g)) {
        const target = relative(SRC, resolve(dirname(file), match[1] ?? ''));
        const targetLayer = target.split('/')[0] ?? '';
        if (!allowed.includes(targetLayer)) problems.push(`${relative(SRC, file)} imports ${target}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
