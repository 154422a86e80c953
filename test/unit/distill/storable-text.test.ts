import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { loadConfig } from '../../../src/config/index.js';
import { storableText } from '../../../src/distill/distiller.js';

test('storableText refuses exactly U+0000 and unpaired surrogates', () => {
  assert.equal(storableText('plain'), true);
  assert.equal(storableText('emoji 😀 pair'), true);
  assert.equal(storableText('a\u0000b'), false);
  assert.equal(storableText('\ud800'), false);
  assert.equal(storableText('x\udfff'), false);
  assert.equal(storableText('\ud83d\ude00\ud83d'), false);
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (s) => {
      const expected = !s.includes('\u0000') && Buffer.from(s, 'utf8').toString('utf8') === s;
      assert.equal(storableText(s), expected);
    }),
  );
});

test('a notification whose text would not be storable is malformed (bad_trait_value / missing ids), not an event', async () => {
  const config = await loadConfig('etc/winchester.yaml', { env: {} });
  const distiller = config.distiller!;
  const base = {
    event_type: 'compute.instance.exists',
    message_id: 'm-1',
    timestamp: '2015-02-01 00:00:00.000000',
    payload: { instance_id: 'i-1', tenant_id: 't', display_name: 'ok' },
  };
  assert.equal(distiller.distillJson(JSON.stringify(base)).ok, true);
  for (const display of ['a\u0000b', 'x\ud800']) {
    const r = distiller.distillJson(
      JSON.stringify({ ...base, payload: { ...base.payload, display_name: display } }),
    );
    assert.equal(r.ok, false);
    if (!r.ok && r.kind === 'malformed') {
      assert.equal(r.reason, 'bad_trait_value');
      assert.match(r.detail, /display_name.*U\+0000 or an unpaired surrogate/);
    }
  }
  const badId = distiller.distillJson(JSON.stringify({ ...base, message_id: 'm\u0000' }));
  assert.ok(!badId.ok && badId.kind === 'malformed' && badId.reason === 'missing_message_id');
});
