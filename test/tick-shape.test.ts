// Decision 0009: a full GC while no nextTick entry is alive must not make V8 build node's tick shape anew.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';

const MODULE = join(process.cwd(), 'src', 'cli', 'tick-shape.ts');

/**
 * Runs a child that (optionally) pins the shape, uses nextTick enough for V8 to keep feedback, drops every
 * entry, forces a full GC and ticks again, with V8's map log on. Returns how many times the nextTick
 * literal's shape was built from the same root map: once when it survives the GC, twice when it did not.
 */
function tickShapeBuilds(pin: boolean): number {
  const dir = mkdtempSync(join(tmpdir(), 'vakt-tick-shape-'));
  try {
    const log = join(dir, 'v8.log');
    // Plain node, no tsx: its loader thread keeps tick entries alive and hides the problem.
    const compiled = join(dir, 'tick-shape.mjs');
    const source = readFileSync(MODULE, 'utf8');
    writeFileSync(
      compiled,
      ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText,
    );
    const script = `
      const { keepNextTickShape } = await import(${JSON.stringify(compiled)});
      if (${pin}) keepNextTickShape();
      for (let i = 0; i < 200; i++) await new Promise((resolve) => process.nextTick(resolve));
      await new Promise((resolve) => setTimeout(resolve, 20));
      globalThis.gc();
      for (let i = 0; i < 10; i++) await new Promise((resolve) => process.nextTick(resolve));
    `;
    const result = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        '--log-maps',
        `--logfile=${log}`,
        '--no-logfile-per-isolate',
        '--input-type=module',
        '-e',
        script,
      ],
      { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } },
    );
    assert.equal(result.status, 0, result.stderr);
    // map,Transition,time,from,to,pc,line,column,reason,name — the tick literal is the chain
    // async_id_symbol → trigger_async_id_symbol → callback.
    const transitions = readFileSync(log, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('map,Transition,'))
      .map((line) => {
        const fields = line.split(',');
        return { from: fields[3] ?? '', to: fields[4] ?? '', name: fields.slice(9).join(',') };
      });
    const next = (from: string, name: string) =>
      transitions.find((t) => t.from === from && t.name.includes(name));
    const roots = new Map<string, number>();
    for (const first of transitions.filter((t) => t.name.includes('symbol("async_id_symbol"'))) {
      const second = next(first.to, 'symbol("trigger_async_id_symbol"');
      if (second === undefined || next(second.to, 'callback') === undefined) continue;
      roots.set(first.from, (roots.get(first.from) ?? 0) + 1);
    }
    assert.ok(roots.size > 0, 'no nextTick literal transitions in the map log');
    return Math.max(...roots.values());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('nextTick shape (decision 0009)', () => {
  it('is built anew after a full GC without the pin (the problem, on this Node)', () => {
    assert.equal(tickShapeBuilds(false), 2);
  });

  it('is built once and survives a full GC with the pin held', () => {
    assert.equal(tickShapeBuilds(true), 1);
  });

  it('is pinned by the vakt binary before the CLI modules load', () => {
    const bin = readFileSync(join(process.cwd(), 'bin', 'vakt.js'), 'utf8');
    const pin = bin.indexOf('keepNextTickShape();');
    const main = bin.indexOf("import('../dist/cli/main.js')");
    assert.ok(pin > 0 && main > pin, 'bin/vakt.js must call keepNextTickShape() before importing the CLI');
  });
});
