/**
 * The corpus of broken configurations in test/fixtures/bad-config: each folder is one case with
 * a winchester.yaml. Every line where a problem must be reported carries a comment
 * `# expect-error: <part of the message>`; the case passes when loading fails with exactly those
 * problems, each at that file and line.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { checkConfiguration } from '../../../src/cli/check-config.js';
import { ConfigError, type ConfigProblem } from '../../../src/errors.js';

const corpus = new URL('../../fixtures/bad-config/', import.meta.url).pathname;

interface Expected {
  file: string;
  line: number;
  text: string;
}

function expectations(dir: string): Expected[] {
  const out: Expected[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    readFileSync(join(dir, file), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const m = /#\s*expect-error:\s*(.+?)\s*$/.exec(line);
        if (m) out.push({ file, line: i + 1, text: m[1] as string });
      });
  }
  return out;
}

async function problemsOf(dir: string): Promise<ConfigProblem[]> {
  try {
    await checkConfiguration('winchester.yaml', { cwd: dir, env: {} });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('bad configuration corpus', () => {
  const cases = readdirSync(corpus).sort();
  test('the corpus is not empty', () => assert.ok(cases.length >= 10));
  for (const name of cases) {
    test(name, async () => {
      const dir = join(corpus, name);
      const expected = expectations(dir);
      assert.ok(expected.length > 0, `${name} has no expect-error markers`);
      const problems = await problemsOf(dir);
      const show = (p: ConfigProblem) => `${p.file}:${p.line}:${p.column}: ${p.message}`;
      const unmatched = [...problems];
      for (const e of expected) {
        const i = unmatched.findIndex(
          (p) => p.file === e.file && p.line === e.line && p.message.includes(e.text),
        );
        assert.ok(
          i >= 0,
          `expected ${e.file}:${e.line}: …${e.text}… among:\n${problems.map(show).join('\n')}`,
        );
        unmatched.splice(i, 1);
      }
      assert.deepEqual(unmatched.map(show), [], 'problems nobody expected');
      for (const p of problems) {
        assert.ok(p.column === undefined || p.column >= 1, show(p));
        assert.doesNotMatch(p.message, /\n|\bat \S+:\d+:\d+\)/, 'one line, no stack trace');
      }
    });
  }
});
