/**
 * JSON.parse accepts any nesting depth; the distiller's error details must not recurse into such a value
 * (a stack overflow in the route stage would stall the notifications partition forever).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDistiller } from '../../../src/distill/index.js';

const distiller = createDistiller([{ event_type: 'a.*', traits: { n: { fields: 'payload.n' } } }]);
const deep = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

test('a top-level list nested 200k deep is not_an_object, not an exception', () => {
  const r = distiller.distillJson(deep(200_000));
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.kind === 'malformed' && r.reason, 'not_an_object');
});

test('event_type, message_id, timestamp and oslo.version nested 100k deep get their reasons', () => {
  const d = deep(100_000);
  const cases: [string, string][] = [
    [`{"event_type":${d},"message_id":"m"}`, 'missing_event_type'],
    [`{"event_type":"a.b","message_id":${d}}`, 'missing_message_id'],
    [`{"event_type":"a.b","message_id":"m","timestamp":${d}}`, 'bad_timestamp'],
    [`{"oslo.version":${d},"oslo.message":"{}"}`, 'bad_envelope'],
  ];
  for (const [json, reason] of cases) {
    const r = distiller.distillJson(json);
    assert.equal(!r.ok && r.kind === 'malformed' && r.reason, reason, json.slice(0, 40));
  }
});
