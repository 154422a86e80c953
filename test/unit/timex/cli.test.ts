/** `winchester timex`, run in-process through main(). */
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { createTimexCommand } from '../../../src/cli/timex.js';
import { formatInstant, nowInstant, parseDatetime } from '../../../src/timex/instant.js';
import { runCli } from '../../helpers/cli.js';

const T = '--var=timestamp=2014-08-01T02:10:23.000550Z';

describe('winchester timex EXPR', () => {
  test('prints a range as one JSON line', async () => {
    const r = await runCli(['timex', 'day + 6h', T]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(r.stdoutLines(), [
      '{"begin":"2014-07-31T06:00:00.000000Z","end":"2014-08-01T06:00:00.000000Z","range":true}',
    ]);
  });
  test('prints a timestamp with begin = end and range false', async () => {
    const r = await runCli(['timex', '$t + 1mo', '--var', 't=2016-01-31 10:00:00']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      begin: '2016-02-29T10:00:00.000000Z',
      end: '2016-02-29T10:00:00.000000Z',
      range: false,
    });
  });
  test('several --var, offsets converted to UTC, a leading $ tolerated', async () => {
    const r = await runCli([
      'timex',
      '$a to $b',
      '--var',
      'a=2014-08-01T02:00:00+02:00',
      '--var',
      '$b=2014-08-02',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      begin: '2014-08-01T00:00:00.000000Z',
      end: '2014-08-02T00:00:00.000000Z',
      range: true,
    });
  });
  test('--contains reports membership', async () => {
    const inside = await runCli(['timex', 'day', T, '--contains', '2014-08-01T23:59:59.999999Z']);
    assert.equal(JSON.parse(inside.stdout).contains, true);
    const outside = await runCli(['timex', 'day', T, '--contains', '2014-08-02T00:00:00Z']);
    assert.equal(JSON.parse(outside.stdout).contains, false);
  });
  test('$timestamp defaults to the wall clock', async () => {
    const before = nowInstant();
    const r = await runCli(['timex', '$timestamp']);
    const after = nowInstant();
    assert.equal(r.code, 0, r.stderr);
    const got = parseDatetime(JSON.parse(r.stdout).begin);
    assert.ok(got >= before && got <= after, `${formatInstant(got)} not between the clock reads`);
  });
  test('an injected clock sets the default $timestamp', async () => {
    const cmd = createTimexCommand(() => parseDatetime('2014-08-01T02:10:23Z'));
    const stdout = new PassThrough();
    let text = '';
    stdout.on('data', (c: Buffer) => {
      text += c.toString();
    });
    const code = await cmd.run(['hour'], {
      stdin: Readable.from([]),
      stdout,
      stderr: new PassThrough(),
      env: {},
      cwd: '.',
    });
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(text), {
      begin: '2014-08-01T02:00:00.000000Z',
      end: '2014-08-01T03:00:00.000000Z',
      range: true,
    });
  });
  test('a syntax error exits 1 with the position and a caret, no stack trace', async () => {
    const r = await runCli(['timex', '$a + 1h x', '--var', 'a=2014-08-01']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.deepEqual(r.stderrLines(), [
      "winchester: timex: unexpected token 'x' at position 8",
      '  $a + 1h x',
      '          ^',
    ]);
  });
  test('a missing variable exits 1 naming it', async () => {
    const r = await runCli(['timex', 'day($launched_at)']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\$launched_at is not defined/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
  test('bad usage exits 2', async () => {
    for (const args of [
      ['timex'],
      ['timex', '$a', '$b'],
      ['timex', '$a', '--var', 'a'],
      ['timex', '$a', '--var', 'a=yesterday'],
      ['timex', '$a', '--var', '1a=2014-01-01'],
      ['timex', '$a', '--var', 'a=2014-01-01', '--var', 'a=2014-01-02'],
      ['timex', '$a', '--bogus'],
      ['timex', '$a', '--contains', 'soon'],
      ['timex', '--jsonl', '$a'],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^winchester: timex: /, args.join(' '));
      assert.equal(r.stdout, '');
    }
  });
  test('--help prints the full usage', async () => {
    const r = await runCli(['timex', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: winchester timex EXPR \[--var NAME=DATETIME\]/);
    assert.match(r.stdout, /--jsonl/);
    assert.match(r.stdout, /pinned/);
  });
  test('is listed in winchester --help', async () => {
    const r = await runCli(['--help']);
    assert.match(r.stdout, /^\s+timex\s+evaluate a time expression/m);
  });
});

describe('winchester timex --jsonl', () => {
  test('one result or error per line, in order; bad lines do not stop the batch', async () => {
    const input = [
      '{"expr": "day + 6h", "vars": {"timestamp": "2014-08-01T02:10:23.000550Z"}}',
      'not json',
      '',
      '{"expr": "$a + 1h x", "vars": {"a": "2014-08-01"}}',
      '{"expr": "$missing"}',
      '{"expr": "$a", "vars": {"a": "not a date"}}',
      '[1, 2]',
      '{"vars": {}}',
      '{"expr": "$a", "vars": {"a": 5}}',
      '{"expr": "$a @ 0h", "vars": {"a": "2014-08-01T05:06:07Z"}}',
      '   ',
      '{"expr": "$t + 300y", "vars": {"t": "2014-01-01"}}',
    ].join('\n');
    const r = await runCli(['timex', '--jsonl'], { stdin: input });
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdoutLines().map((l) => JSON.parse(l));
    assert.equal(out.length, 10);
    assert.deepEqual(out[0], {
      begin: '2014-07-31T06:00:00.000000Z',
      end: '2014-08-01T06:00:00.000000Z',
      range: true,
    });
    assert.match(out[1].error, /^invalid JSON/);
    assert.equal(out[2].error, "unexpected token 'x' at position 8");
    assert.equal(out[3].error, 'variable $missing is not defined');
    assert.match(out[4].error, /variable 'a'.*not a datetime/);
    assert.match(out[5].error, /JSON object/);
    assert.match(out[6].error, /"expr" must be a string/);
    assert.match(out[7].error, /datetime string/);
    assert.deepEqual(out[8], {
      begin: '2014-08-01T00:06:07.000000Z',
      end: '2014-08-01T00:06:07.000000Z',
      range: false,
    });
    assert.match(out[9].error, /outside the supported date range/);
    for (const o of out) {
      assert.ok(['error', 'begin,end,range'].includes(Object.keys(o).join(',')), JSON.stringify(o));
    }
  });
  test('--var values are defaults that a line overrides; CRLF input is fine', async () => {
    const input = '{"expr": "$a"}\r\n{"expr": "$a", "vars": {"a": "2020-02-02"}}\r\n';
    const r = await runCli(['timex', '--jsonl', '--var', 'a=2014-08-01'], { stdin: input });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.stdoutLines().map((l) => JSON.parse(l).begin),
      ['2014-08-01T00:00:00.000000Z', '2020-02-02T00:00:00.000000Z'],
    );
  });
  test('a large batch keeps every line, in order', async () => {
    const lines = Array.from({ length: 5000 }, (_, i) =>
      JSON.stringify({ expr: `$t + ${i}s`, vars: { t: '2014-08-01' } }),
    );
    const r = await runCli(['timex', '--jsonl'], { stdin: lines.join('\n') });
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdoutLines();
    assert.equal(out.length, 5000);
    assert.equal(JSON.parse(out[4999]!).begin, '2014-08-01T01:23:19.000000Z');
  });
});
