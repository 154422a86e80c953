import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type JsonRecord, readJsonRecords } from '../../../src/model/json-records.js';

async function collect(chunks: string[]): Promise<JsonRecord[]> {
  const out: JsonRecord[] = [];
  for await (const r of readJsonRecords(Readable.from(chunks.map((c) => Buffer.from(c))))) out.push(r);
  return out;
}

describe('readJsonRecords', () => {
  test('JSON lines: blank lines skipped, CRLF tolerated, line numbers kept', async () => {
    const r = await collect(['{"a":1}\r\n\n  \n{"b":', '2}\n{bad\n{"c":3}']);
    assert.deepEqual(r, [
      { line: 1, text: '{"a":1}' },
      { line: 4, text: '{"b":2}' },
      { line: 5, text: '{bad' },
      { line: 6, text: '{"c":3}' },
    ]);
  });
  test('one JSON array: elements with their starting line', async () => {
    const r = await collect(['\n [ {"a": "x,]}"},\n', '  {"b": [1, {"c": 2}]}', ' ,\n"s\\"]" ]\n']);
    assert.deepEqual(r, [
      { line: 2, text: '{"a": "x,]}"}' },
      { line: 3, text: '{"b": [1, {"c": 2}]}' },
      { line: 4, text: '"s\\"]"' },
    ]);
    assert.deepEqual(await collect(['[]']), []);
    assert.deepEqual(await collect(['   ']), []);
  });
  test('framing errors are reported, not thrown', async () => {
    // The unterminated last element is not emitted: only the framing error is.
    assert.deepEqual(await collect(['[{"a":1},\n{"b":2}']), [
      { line: 1, text: '{"a":1}' },
      { line: 2, error: 'unexpected end of input: the JSON array is not closed' },
    ]);
    const trailing = await collect(['[1] x']);
    assert.equal(trailing.at(-1)!.error, 'unexpected data after the JSON array');
  });
  test('multi-byte characters split across chunks survive', async () => {
    const bytes = Buffer.from('{"a":"é€😀"}\n');
    const parts = [bytes.subarray(0, 7), bytes.subarray(7, 9), bytes.subarray(9)];
    const out: JsonRecord[] = [];
    for await (const r of readJsonRecords(Readable.from(parts))) out.push(r);
    assert.deepEqual(out, [{ line: 1, text: '{"a":"é€😀"}' }]);
  });
  test('property: any chunking of an array yields the same elements as JSON.parse', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.jsonValue()),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (values, cuts) => {
          const text = JSON.stringify(values, null, 1);
          const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
          const chunks: string[] = [];
          let prev = 0;
          for (const p of points) {
            chunks.push(text.slice(prev, p));
            prev = p;
          }
          chunks.push(text.slice(prev));
          const recs = await collect(chunks.filter((c) => c !== ''));
          assert.deepEqual(
            recs.map((r) => JSON.parse(r.text!)),
            JSON.parse(text),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});
