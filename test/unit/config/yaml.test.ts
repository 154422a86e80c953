import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Problems } from '../../../src/config/problems.js';
import { parseYaml, toPlain, type YMap, type YNode } from '../../../src/config/yaml.js';

function parse(text: string) {
  const problems = new Problems();
  const { root } = parseYaml(text, 'f.yaml', problems);
  return { root, problems };
}

const map = (n: YNode | null | undefined): YMap => {
  assert.equal(n?.kind, 'map');
  return n as YMap;
};

describe('positioned YAML', () => {
  test('positions are 1-based line and column of each node', () => {
    const { root } = parse('a: 1\nb:\n  - x\n  - "y"\n');
    const m = map(root);
    assert.deepEqual(m.get('a')?.keyPos, { line: 1, column: 1 });
    assert.deepEqual(m.get('a')?.value.pos, { line: 1, column: 4 });
    const b = m.get('b')?.value;
    assert.equal(b?.kind, 'seq');
    if (b?.kind !== 'seq') return;
    assert.deepEqual(b.items[1]?.pos, { line: 4, column: 5 });
    assert.equal(b.items[1]?.kind === 'scalar' && b.items[1].plain, false);
  });

  test('YAML 1.1 scalars as PyYAML reads them; timestamps stay text', () => {
    const { root } = parse('a: yes\nb: off\nc: 0777\nd: 2014-08-01 01:02:03.123456\ne: 1.5\nf: ~\ny: n\n');
    assert.deepEqual(toPlain(root as YNode), {
      a: true,
      b: false,
      c: 511,
      d: '2014-08-01 01:02:03.123456',
      e: 1.5,
      f: null,
      y: 'n',
    });
  });

  test('floats only where PyYAML sees them: `.` and `1e5` stay text (config_path: . is a directory)', () => {
    const { root } = parse('a: .\nb: 1e5\nc: 1.0e+5\nd: .5\ne: -1.\nf: .nan\ng: 1_000.5\n');
    const plain = toPlain(root as YNode) as Record<string, unknown>;
    assert.equal(plain.a, '.');
    assert.equal(plain.b, '1e5');
    assert.equal(plain.c, 100000);
    assert.equal(plain.d, 0.5);
    assert.equal(plain.e, -1);
    assert.ok(Number.isNaN(plain.f));
    assert.equal(plain.g, 1000.5);
  });

  test('merge keys: explicit keys win, earlier sources win over later ones', () => {
    const { root, problems } = parse(
      'base: &b\n  x: 1\n  y: 1\nother: &o\n  y: 2\n  z: 2\nm:\n  <<: [*b, *o]\n  x: 3\n',
    );
    assert.equal(problems.ok, true);
    assert.deepEqual(toPlain(map(root).get('m')?.value as YNode), { y: 1, z: 2, x: 3 });
  });

  test('merge keys: key order and values as the dict PyYAML builds (checked against PyYAML 6)', () => {
    // PyYAML: {'m': {'y': 1, 'z': 2, 'w': 2, 'x': 3, 'q': 4}, 'n': {'x': 1, 'y': 2, 'z': 2, 'w': 2}}
    const { root, problems } = parse(
      'b: &b {x: 1, y: 1}\no: &o {y: 2, z: 2, w: 2}\nm:\n  q: 0\n  <<: [*b, *o]\n  x: 3\n  q: 4\nn:\n  <<: *b\n  <<: *o\n',
    );
    const m = map(map(root).get('m')?.value);
    assert.deepEqual(
      m.entries.map((e) => [e.key, toPlain(e.value)]),
      [
        ['y', 1],
        ['z', 2],
        ['w', 2],
        ['x', 3],
        ['q', 4],
      ],
    );
    // A merged key points where its value was written (the anchor), an own key at itself.
    assert.deepEqual(m.get('y')?.keyPos, { line: 1, column: 14 });
    assert.deepEqual(m.get('x')?.keyPos, { line: 6, column: 3 });
    assert.deepEqual(m.get('q')?.keyPos, { line: 7, column: 3 });
    const n = map(map(root).get('n')?.value);
    assert.deepEqual(
      n.entries.map((e) => [e.key, toPlain(e.value)]),
      [
        ['x', 1],
        ['y', 2],
        ['z', 2],
        ['w', 2],
      ],
    );
    assert.deepEqual(
      problems.warnings.map((w) => [w.line, w.message]),
      [[7, "duplicate key 'q': this later value is used"]],
    );
  });

  test('an alias is the node built for its anchor (nested aliases stay linear)', () => {
    const { root } = parse('a: &a {k: [1, 2]}\nb: *a\nc: [*a, *a]\n');
    const m = map(root);
    const c = m.get('c')?.value;
    assert.equal(m.get('b')?.value, m.get('a')?.value);
    assert.equal(c?.kind === 'seq' && c.items[1], m.get('a')?.value);
    const levels = ['l0: &l0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 30; i++)
      levels.push(
        `l${i}: &l${i} [${Array(10)
          .fill(`*l${i - 1}`)
          .join(', ')}]`,
      );
    const deep = parse(`${levels.join('\n')}\n`);
    assert.equal(deep.problems.ok, true);
    assert.equal(map(deep.root).entries.length, 30);
  });

  test('aliases resolve to their anchor', () => {
    const { root } = parse('a: &x [1, 2]\nb: *x\n');
    assert.deepEqual(toPlain(map(root).get('b')?.value as YNode), [1, 2]);
  });

  test('duplicate keys: the last wins, with a warning (as PyYAML, which is silent)', () => {
    const { root, problems } = parse('a: 1\na: 2\n');
    assert.deepEqual(toPlain(root as YNode), { a: 2 });
    assert.equal(problems.ok, true);
    assert.deepEqual(
      problems.warnings.map((w) => [w.line, w.message]),
      [[2, "duplicate key 'a': this later value is used"]],
    );
  });

  test('syntax errors are problems with a position and no excerpt', () => {
    const { root, problems } = parse('a: [1, 2\nb: 3\n');
    assert.equal(root, null);
    assert.ok(problems.errors.length > 0);
    for (const p of problems.errors) {
      assert.equal(p.file, 'f.yaml');
      assert.ok(typeof p.line === 'number');
      assert.match(p.message, /^YAML syntax error: /);
      assert.doesNotMatch(p.message, /\n/);
    }
  });

  test('a bad merge source is a problem', () => {
    const { problems } = parse('a: &x 1\nb:\n  <<: *x\n');
    assert.equal(problems.ok, false);
  });

  test('an empty document is null; __proto__ keys stay data', () => {
    assert.equal(parse('').root, null);
    assert.equal(parse('# nothing\n').root, null);
    const plain = toPlain(parse('__proto__: 1\n').root as YNode) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(plain), Object.prototype);
    assert.equal(Object.hasOwn(plain, '__proto__'), true);
  });
});
