// Keeps docs/scoring.md true: every worked example's numbers are recomputed with the bundled policy (SPEC §5).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_SCORING_POLICY, type ScoringInput, score } from '../src/core/scoring.js';

const doc = readFileSync(resolve(import.meta.dirname, '../docs/scoring.md'), 'utf8');
const blocks = [...doc.matchAll(/```json scoring-example\n([\s\S]*?)\n```/g)].map((m) => m[1] ?? '');

describe('docs/scoring.md worked examples', () => {
  it('has worked examples', () => {
    assert.ok(blocks.length >= 8, `${blocks.length} examples`);
  });
  it('names the bundled policy version', () => {
    assert.ok(doc.includes(`\`${DEFAULT_SCORING_POLICY.version}\``));
  });
  blocks.forEach((block, index) => {
    const example = JSON.parse(block) as {
      input: ScoringInput;
      confidenceLevel: number;
      breakdown: Record<string, unknown>;
    };
    it(`example ${index + 1} gives the confidence level and breakdown the document shows`, () => {
      const result = score(example.input);
      assert.equal(result.confidenceLevel, example.confidenceLevel);
      assert.deepEqual(result.breakdown, example.breakdown);
    });
  });
});
