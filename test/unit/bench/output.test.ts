import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { diffHeapSummaries, summarizeHeapSnapshot } from '../../../bench/lib/heap-snapshot.js';
import {
  fmtInt,
  fmtMs,
  fmtS,
  niceCeil,
  resultsFileName,
  resultsJson,
  table,
  throughputSvg,
} from '../../../bench/lib/output.js';

describe('table', () => {
  test('aligns columns, right-aligns the numeric ones, rules the header', () => {
    const t = table(
      ['name', 'n'],
      [
        ['a', '1'],
        ['bbb', '1,000'],
      ],
      new Set([1]),
    );
    assert.equal(t, ['name      n', '----  -----', 'a         1', 'bbb   1,000'].join('\n'));
  });
  test('a short row is padded, trailing spaces trimmed', () => {
    const t = table(['a', 'b'], [['x']]);
    assert.equal(t.split('\n')[2], 'x');
  });
});

describe('number formats', () => {
  test('thousands, ms, s; not finite shows –', () => {
    assert.equal(fmtInt(1234567.6), '1,234,568');
    assert.equal(fmtMs(0.2345), '235 ms');
    assert.equal(fmtS(4.456), '4.46 s');
    assert.equal(fmtInt(Number.NaN), '–');
    assert.equal(fmtMs(Number.POSITIVE_INFINITY), '–');
    assert.equal(fmtS(Number.NaN), '–');
  });
});

describe('results JSON', () => {
  test('non-finite numbers become null, so the file parses', () => {
    const text = resultsJson({ a: Number.NaN, b: [Number.POSITIVE_INFINITY, 1], c: { d: 2 } });
    assert.deepEqual(JSON.parse(text), { a: null, b: [null, 1], c: { d: 2 } });
    assert.ok(text.endsWith('\n'));
  });
  test('file name: kind and UTC time to the second, no colons', () => {
    assert.equal(
      resultsFileName('heap', new Date('2026-11-25T23:01:31.456Z')),
      'heap-2026-11-25T23-01-31Z.json',
    );
    assert.throws(() => resultsFileName('../x', new Date()), RangeError);
  });
});

describe('throughputSvg', () => {
  test('a self-contained SVG with a path per series and escaped labels', () => {
    const svg = throughputSvg('run <1>', [
      {
        label: 'a & b',
        color: '#000',
        points: [
          { t: 0, v: 10 },
          { t: 2, v: 20 },
        ],
      },
      { label: 'empty', color: '#f00', points: [] },
    ]);
    assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
    assert.ok(svg.includes('run &lt;1&gt;'));
    assert.ok(svg.includes('a &amp; b'));
    assert.equal((svg.match(/<path /g) ?? []).length, 1);
    assert.ok(!/<script|href=/.test(svg));
  });
  test('niceCeil rounds an axis top up to 1, 2, 2.5 or 5 × 10^k', () => {
    assert.equal(niceCeil(7), 10);
    assert.equal(niceCeil(1800), 2000);
    assert.equal(niceCeil(2100), 2500);
    assert.equal(niceCeil(26_000), 50_000);
    assert.equal(niceCeil(0), 1);
  });
});

describe('heap snapshot summary', () => {
  const snapshot = {
    snapshot: {
      meta: {
        node_fields: ['type', 'name', 'id', 'self_size', 'edge_count'],
        node_types: [
          ['hidden', 'array', 'string', 'object', 'code', 'closure'],
          'string',
          'number',
          'number',
          'number',
        ],
      },
    },
    // type, name, id, self_size, edge_count
    nodes: [
      3, 0, 1, 128, 0, 3, 0, 3, 128, 0, 2, 1, 5, 40, 0, 2, 2, 7, 60, 0, 5, 3, 9, 32, 0, 3, 4, 11, 56, 0,
    ],
    strings: ['LiveStream', 'abc', 'def', 'compare', 'Map'],
  };
  test('self size per constructor; strings by kind; closures marked', () => {
    assert.deepEqual(summarizeHeapSnapshot(snapshot), [
      { name: 'LiveStream', count: 2, bytes: 256 },
      { name: '(string)', count: 2, bytes: 100 },
      { name: 'Map', count: 1, bytes: 56 },
      { name: 'compare()', count: 1, bytes: 32 },
    ]);
  });
  test('not a snapshot: a clear error', () => {
    assert.throws(
      () =>
        summarizeHeapSnapshot({
          snapshot: { meta: { node_fields: [], node_types: [] } },
          nodes: [],
          strings: [],
        }),
      /not a V8 heap snapshot/,
    );
  });
  test('diff: growth only, largest first', () => {
    const d = diffHeapSummaries(
      [
        { name: 'A', count: 1, bytes: 100 },
        { name: 'B', count: 5, bytes: 500 },
      ],
      [
        { name: 'A', count: 3, bytes: 400 },
        { name: 'B', count: 5, bytes: 400 },
        { name: 'C', count: 1, bytes: 10 },
      ],
    );
    assert.deepEqual(d, [
      { name: 'A', count: 2, bytes: 300 },
      { name: 'C', count: 1, bytes: 10 },
    ]);
  });
});
