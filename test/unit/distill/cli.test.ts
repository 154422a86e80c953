import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../helpers/cli.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/distill');
const dir = mkdtempSync(join(tmpdir(), 'winchester-distill-'));
const defs = join(dir, 'defs.yaml');
writeFileSync(
  defs,
  `- event_type: compute.instance.*
  traits:
    memory_mb:
      type: int
      fields: payload.memory_mb
    ratio:
      type: float
      fields: payload.ratio
    launched_at:
      type: datetime
      fields: payload.launched_at
    host:
      fields: publisher_id
      plugin:
        name: split
        parameters: {segment: 1, max_split: 1}
`,
);

const n = (id: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    event_type: 'compute.instance.exists',
    message_id: id,
    timestamp: '2015-01-22 02:50:22.702356',
    publisher_id: 'compute.host-1',
    payload: { memory_mb: '512', ratio: 1, launched_at: '2015-01-20T10:00:00Z', ...extra },
  });

describe('winchester distill', () => {
  test('JSON lines in, one flat event per line out, summary on stderr', async () => {
    const input = [
      n('a'),
      '',
      '{oops',
      JSON.stringify({ event_type: 'image.update', message_id: 'x' }),
      n('b', { memory_mb: 'lots' }),
      n('c'),
    ].join('\n');
    const r = await runCli(['distill', '--definitions', defs], { stdin: input });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdoutLines(), [
      '{"message_id":"a","event_type":"compute.instance.exists","timestamp":"2015-01-22T02:50:22.702356Z","service":"compute.host-1","memory_mb":512,"ratio":1.0,"launched_at":"2015-01-20T10:00:00.000000Z","host":"host-1"}',
      '{"message_id":"c","event_type":"compute.instance.exists","timestamp":"2015-01-22T02:50:22.702356Z","service":"compute.host-1","memory_mb":512,"ratio":1.0,"launched_at":"2015-01-20T10:00:00.000000Z","host":"host-1"}',
    ]);
    const err = r.stderrLines();
    assert.match(err[0]!, /^winchester: line 3: malformed notification \(invalid_json\): /);
    assert.match(
      err[1]!,
      /^winchester: line 5: malformed notification \(bad_trait_value\): trait 'memory_mb' \(int\)/,
    );
    assert.equal(err.at(-1), 'distilled 2, unmatched 1, malformed 2 (invalid_json: 1, bad_trait_value: 1)');
  });

  test('a JSON array from a file; --catch-all keeps unmatched ones', async () => {
    const file = join(dir, 'in.json');
    writeFileSync(
      file,
      `[\n${n('a')},\n${JSON.stringify({ event_type: 'image.update', message_id: 'x', timestamp: '2015-01-01T00:00:00Z', publisher_id: 'glance' })}\n]\n`,
    );
    const r = await runCli(['distill', '-d', 'defs.yaml', '--catch-all', 'in.json'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdoutLines().length, 2);
    assert.equal(
      r.stdoutLines()[1],
      '{"message_id":"x","event_type":"image.update","timestamp":"2015-01-01T00:00:00.000000Z","service":"glance"}',
    );
    assert.equal(r.stderrLines().at(-1), 'distilled 2, unmatched 0, malformed 0');
  });

  test('oslo.messaging envelopes are unwrapped', async () => {
    const r = await runCli(['distill', '-d', defs], {
      stdin: JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': n('env') }),
    });
    assert.equal(JSON.parse(r.stdoutLines()[0]!).message_id, 'env');
  });

  test('user plugins with --plugin', async () => {
    const pdefs = join(dir, 'pdefs.yaml');
    writeFileSync(
      pdefs,
      '- event_type: "*"\n  traits:\n    loud:\n      fields: publisher_id\n      plugin: {name: upper, parameters: {}}\n',
    );
    const r = await runCli(
      ['distill', '-d', pdefs, '--plugin', `upper=${join(fixtures, 'plugins/upper.mjs')}#Upper`],
      { stdin: n('a') },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdoutLines()[0]!).loud, 'COMPUTE.HOST-1');
  });

  test('bad usage and bad config exit 2 with file:line; unreadable input exits 1', async () => {
    const noDefs = await runCli(['distill']);
    assert.equal(noDefs.code, 2);
    assert.match(noDefs.stderr, /--definitions FILE is required/);
    assert.equal((await runCli(['distill', '-d', defs, '--nope'])).code, 2);
    assert.equal((await runCli(['distill', '-d', defs, '--plugin', 'x'])).code, 2);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, '- event_type: a\n  traits:\n    x:\n      type: bool\n      fields: y\n');
    const r = await runCli(['distill', '-d', 'bad.yaml'], { cwd: dir });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.yaml:4:\d+: trait 'x': invalid type "bool"/);
    assert.ok(!r.stderr.includes('    at '), 'no stack trace');
    const missingDefs = await runCli(['distill', '-d', 'nope.yaml'], { cwd: dir });
    assert.equal(missingDefs.code, 2);
    assert.match(missingDefs.stderr, /nope\.yaml: cannot read event definitions: file not found/);
    const missingInput = await runCli(['distill', '-d', defs, join(dir, 'missing.jsonl')]);
    assert.equal(missingInput.code, 1);
    assert.match(missingInput.stderr, /cannot read input .*missing\.jsonl.*no such file/);
    assert.equal(missingInput.stdout, '');
    const badPlugin = await runCli(['distill', '-d', defs, '--plugin', 'p=./nope.mjs'], { cwd: dir });
    assert.equal(badPlugin.code, 2);
    assert.match(badPlugin.stderr, /plugin 'p': cannot import/);
  });

  test('warnings go to stderr, --quiet silences reports and summary', async () => {
    const wdefs = join(dir, 'w.yaml');
    writeFileSync(wdefs, '- event_type: "*"\n  traits: {}\n  extra: 1\n');
    const r = await runCli(['distill', '-d', wdefs], { stdin: `${n('a')}\n{bad\n` });
    assert.match(r.stderrLines()[0]!, /w\.yaml:3:\d+: warning: definition #1: unknown key 'extra' ignored/);
    const q = await runCli(['distill', '-q', '-d', wdefs], { stdin: `${n('a')}\n{bad\n` });
    assert.equal(q.stderr, '');
    assert.equal(q.stdoutLines().length, 1);
  });

  test('a flood of malformed lines is counted but only the first 100 are shown', async () => {
    const r = await runCli(['distill', '-d', defs], {
      stdin: Array.from({ length: 150 }, () => '{bad').join('\n'),
    });
    const reports = r.stderrLines().filter((l) => l.includes('malformed notification ('));
    assert.equal(reports.length, 100);
    assert.ok(r.stderr.includes('further malformed notifications are counted but not shown'));
    assert.equal(r.stderrLines().at(-1), 'distilled 0, unmatched 0, malformed 150 (invalid_json: 150)');
  });
});
