/**
 * The short version of `npm run test:hostile` (5,000 generated hostile inputs, or HOSTILE_SIZE) through a live
 * trigger worker, and the broken-configuration corpus through `winchester check`: every case must be
 * rejected (exit 2) naming each expected problem's file and line.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { INTEGRATION_TIMEOUT_MS } from '../helpers/integration.js';
import { generateHostile, KIND_NAMES, KNOWN_OPEN_BUGS } from '../hostile/generator.js';
import { formatReport, runHostile } from '../hostile/suite.js';

const SIZE = Number(process.env.HOSTILE_SIZE ?? '5000');

test(`${SIZE} hostile inputs through a live trigger worker: no crash, every input accounted for, /metrics agree`, {
  timeout: 8 * INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const report = await runHostile(t, { size: SIZE, seed: 20261125 });
  assert.deepEqual(report.problems, [], formatReport(report));
  assert.deepEqual(
    Object.keys(report.kinds).sort(),
    KIND_NAMES.filter((k) => !Object.hasOwn(KNOWN_OPEN_BUGS, k)).sort(),
    'every kind was generated',
  );
  const dead = Object.values(report.totals.deadLettered).reduce((a, b) => a + b, 0);
  assert.equal(report.totals.events + report.totals.unmatched + dead, SIZE);
  assert.ok(
    report.totals.records > 0 && report.totals.noTrigger > 0,
    'valid inputs still reach the triggers',
  );
});

test('the generator is deterministic: the same seed gives the same inputs, another seed others', () => {
  const digest = (seed: number) => {
    const h = createHash('sha256');
    for (const input of generateHostile({ seed, size: 400 })) {
      h.update(`${input.index} ${input.kind} ${input.allowed.join(',')} `);
      h.update(input.value === null ? 'null' : input.value.toString('latin1'), 'latin1');
    }
    return h.digest('hex');
  };
  assert.equal(digest(3), digest(3));
  assert.notEqual(digest(3), digest(4));
});

const corpus = new URL('../fixtures/bad-config/', import.meta.url).pathname;

describe('broken configurations: winchester check rejects each with file and line', () => {
  const cases = readdirSync(corpus).sort();
  test('the corpus has at least 30 cases', () => assert.ok(cases.length >= 30, `${cases.length} cases`));
  for (const name of cases) {
    test(name, async () => {
      const dir = join(corpus, name);
      const r = await runCli(['check', '-c', 'winchester.yaml'], { cwd: dir, env: {} });
      assert.equal(r.code, 2, `exit status; stdout ${r.stdout}; stderr ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\bat \S+:\d+:\d+\)/, 'no stack trace');
      let markers = 0;
      for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
        readFileSync(join(dir, file), 'utf8')
          .split('\n')
          .forEach((line, i) => {
            const m = /#\s*expect-error:\s*(.+?)\s*$/.exec(line);
            if (m === null) return;
            markers++;
            const at = `${file}:${i + 1}:`;
            assert.ok(
              r.stderr.split('\n').some((l) => l.startsWith(at) && l.includes(m[1] as string)),
              `expected a line starting ${at} and mentioning ${m[1]} in:\n${r.stderr}`,
            );
          });
      }
      assert.ok(markers > 0, `${name} has no expect-error markers`);
    });
  }
});
