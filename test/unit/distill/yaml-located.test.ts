import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseYamlLocated } from '../../../src/distill/yaml-located.js';
import { ConfigError } from '../../../src/errors.js';

describe('located YAML (event_definitions loader)', () => {
  test('merge keys give the values and key order of the dict PyYAML builds (checked against PyYAML 6)', () => {
    const doc = parseYamlLocated(
      'b: &b {x: 1, y: 1}\no: &o {y: 2, z: 2, w: 2}\nm:\n  q: 0\n  <<: [*b, *o]\n  x: 3\n  q: 4\n',
      'f.yaml',
    );
    const m = (doc.value as Record<string, Record<string, unknown>>).m!;
    assert.deepEqual(Object.entries(m), [
      ['y', 1],
      ['z', 2],
      ['w', 2],
      ['x', 3],
      ['q', 4],
    ]);
    assert.deepEqual(doc.at(m, 'y'), { line: 1, column: 14 });
    assert.deepEqual(doc.at(m, 'x'), { line: 6, column: 3 });
    assert.deepEqual(doc.at(m, 'q'), { line: 7, column: 3 });
    assert.deepEqual(doc.at(m), { line: 4, column: 3 });
    assert.deepEqual(doc.problem('bad', m, 'nope'), { file: 'f.yaml', line: 4, column: 3, message: 'bad' });
  });

  test('list items are located; an alias is the same object as its anchor', () => {
    const doc = parseYamlLocated('a: &a\n  k: 1\nl:\n  - x\n  - *a\n', 'f.yaml');
    const v = doc.value as { a: object; l: unknown[] };
    assert.equal(v.l[1], v.a);
    assert.deepEqual(doc.at(v.l, 0), { line: 4, column: 5 });
    assert.deepEqual(doc.at(v.a, 'k'), { line: 2, column: 3 });
  });

  test('timestamps stay text; __proto__ is data; an empty file is null', () => {
    const doc = parseYamlLocated('t: 2014-08-01 01:02:03.123456\n__proto__: {x: 1}\n', 'f.yaml');
    const v = doc.value as Record<string, unknown>;
    assert.equal(v.t, '2014-08-01 01:02:03.123456');
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(v, '__proto__')?.value, { x: 1 });
    assert.equal(parseYamlLocated('# nothing\n', 'f.yaml').value, null);
  });

  test('syntax errors, self-referencing aliases and bad merges throw with a line', () => {
    const fails = (text: string, line: number, message: RegExp) =>
      assert.throws(
        () => parseYamlLocated(text, 'f.yaml'),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.problems.length === 1 &&
          e.problems[0]!.file === 'f.yaml' &&
          e.problems[0]!.line === line &&
          message.test(e.problems[0]!.message),
      );
    fails('a: 1\nb: [unclosed\n', 3, /^YAML syntax error: /);
    fails('a: 1\nb:\n  <<: 3\n', 3, /merge key \(<<\) needs a mapping/);
    fails('a: &x\n  b: *x\n', 2, /alias \*x refers to itself/);
  });
});
