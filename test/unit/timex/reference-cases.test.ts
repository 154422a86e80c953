/**
 * Checks every line of test/fixtures/timex/reference-cases.jsonl: random expressions and
 * variables whose expected results were computed by the reference implementation
 * (stacktach-timex 0.20, under Python 3). See test/fixtures/timex/README.md for how the corpus
 * was made and which reference behaviours it leaves out on purpose.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseTimex, TimexEvalError, TimexSyntaxError } from '../../../src/timex/index.js';
import { formatInstant, type Instant, parseDatetime } from '../../../src/timex/instant.js';

interface Case {
  expr: string;
  vars: Record<string, string>;
  expected: { begin: string; end: string; range: boolean } | { error: 'syntax' | 'eval' };
}

const file = new URL('../../fixtures/timex/reference-cases.jsonl', import.meta.url);
const cases: Case[] = readFileSync(file, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as Case);

// A "now" the corpus never relies on: every case that reads $timestamp supplies it.
const NOW: Instant = parseDatetime('1971-01-01T00:00:00Z');

function actual(c: Case, now: Instant = NOW): unknown {
  const vars: Record<string, Instant> = {};
  for (const [k, v] of Object.entries(c.vars)) vars[k] = parseDatetime(v);
  try {
    const r = parseTimex(c.expr).evaluate(vars, now);
    return r.kind === 'range'
      ? { begin: formatInstant(r.begin), end: formatInstant(r.end), range: true }
      : { begin: formatInstant(r.at), end: formatInstant(r.at), range: false };
  } catch (err) {
    if (err instanceof TimexSyntaxError) return { error: 'syntax' };
    if (err instanceof TimexEvalError) return { error: 'eval' };
    throw err;
  }
}

test('the corpus is large and covers results and both error kinds', () => {
  assert.ok(cases.length >= 2000, `only ${cases.length} cases`);
  const kinds = new Set(cases.map((c) => ('error' in c.expected ? c.expected.error : c.expected.range)));
  assert.deepEqual([...kinds].sort(), [false, true, 'eval', 'syntax'].sort());
});

test('every reference case evaluates to the reference answer', () => {
  const failures: string[] = [];
  for (const [i, c] of cases.entries()) {
    const got = actual(c);
    try {
      assert.deepEqual(got, c.expected);
    } catch {
      failures.push(
        `line ${i + 1}: ${JSON.stringify(c.expr)} ${JSON.stringify(c.vars)}\n  expected ${JSON.stringify(c.expected)}\n  got      ${JSON.stringify(got)}`,
      );
    }
  }
  assert.equal(
    failures.length,
    0,
    `${failures.length} of ${cases.length} differ:\n${failures.slice(0, 20).join('\n')}`,
  );
});

test('no case depends on the wall clock (each supplies $timestamp when it reads it)', () => {
  const later = parseDatetime('2031-06-15T12:00:00Z');
  for (const c of cases) assert.deepEqual(actual(c, later), actual(c), c.expr);
});
