/**
 * The registry client's failures as the workers see them (src/kafka/schema-registry.ts): unreachable,
 * slow, failing and refusing registries each give one typed error with a message an operator can act
 * on; an outage after start makes `prepare` reject (the batch is retried) instead of turning good
 * records into unknown-schema dead letters.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { InputError } from '../../../src/errors.js';
import {
  ConfluentSchemaSource,
  connectAvro,
  redactRegistryUrl,
  SchemaRegistryRequestError,
  SchemaRegistryUnavailableError,
} from '../../../src/kafka/schema-registry.js';
import { frame } from '../../../src/serde/codec.js';
import { freePort } from '../../helpers/process.js';
import { startFakeRegistry } from './fake-registry.js';

const TOPICS = { streamEventsTopic: 'r.stream-events', batchesTopic: 'r.batches' };

describe('schema registry failures', () => {
  test('with the right basic-auth credentials both schemas register; with wrong ones: refused, named', async (t) => {
    const registry = await startFakeRegistry({ auth: { username: 'w', password: 's3cret' } });
    t.after(() => registry.close());
    const ok = await connectAvro({ url: registry.url, auth: { username: 'w', password: 's3cret' } }, TOPICS);
    assert.notEqual(ok.codec.schemaIds.streamRecord, ok.codec.schemaIds.batchMessage);
    await assert.rejects(
      connectAvro({ url: registry.url, auth: { username: 'w', password: 'wrong' } }, TOPICS),
      (e) =>
        e instanceof SchemaRegistryRequestError &&
        !e.retriable &&
        /refused the credentials \(HTTP 401\)/.test(e.message) &&
        e.message.includes('schema_registry.username') &&
        !e.message.includes('wrong'),
    );
    await assert.rejects(connectAvro({ url: registry.url }, TOPICS), SchemaRegistryRequestError);
  });

  test('nothing listening: unavailable (retriable), with the URL minus its credentials', async () => {
    const port = await freePort();
    await assert.rejects(connectAvro({ url: `http://u:pw@127.0.0.1:${port}`, retries: 0 }, TOPICS), (e) => {
      assert.ok(e instanceof SchemaRegistryUnavailableError, String(e));
      assert.equal(e.retriable, true);
      assert.match(
        e.message,
        /registering subject r\.stream-events-value: cannot use the schema registry at/,
      );
      assert.match(e.message, /ECONNREFUSED/);
      assert.ok(e.message.includes(`http://127.0.0.1:${port}`) && !e.message.includes('pw'), e.message);
      return true;
    });
  });

  test('a registry that does not answer in time: unavailable after the timeout', async (t) => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      silent.closeAllConnections();
      silent.close();
    });
    const { port } = silent.address() as AddressInfo;
    const started = Date.now();
    await assert.rejects(
      connectAvro({ url: `http://127.0.0.1:${port}`, timeoutMs: 300, retries: 0 }, TOPICS),
      (e) => e instanceof SchemaRegistryUnavailableError && /Timeout \(300ms\)/.test(e.message),
    );
    assert.ok(Date.now() - started < 5000);
  });

  test('5xx answers are retried, then unavailable', async (t) => {
    const registry = await startFakeRegistry();
    t.after(() => registry.close());
    registry.unavailable = true;
    await assert.rejects(
      connectAvro({ url: registry.url, retries: 2 }, TOPICS),
      (e) => e instanceof SchemaRegistryUnavailableError && /Error in the backend data store/.test(e.message),
    );
    assert.equal(registry.requests.length, 3, 'the first request and two retries');
  });

  test('a subject set to another compatibility level than BACKWARD: refused, saying what to change', async (t) => {
    const registry = await startFakeRegistry();
    t.after(() => registry.close());
    const put = await fetch(`${registry.url}/config/r.batches-value`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ compatibility: 'FULL' }),
    });
    assert.equal(put.status, 200);
    await assert.rejects(
      connectAvro({ url: registry.url }, TOPICS),
      (e) =>
        e instanceof SchemaRegistryRequestError &&
        /registering subject r\.batches-value: .* other than BACKWARD .*BACKWARD != FULL/.test(e.message),
    );
  });

  describe('an outage after start', () => {
    let close: () => Promise<void>;
    after(() => close());

    test('prepare rejects (the batch is retried) and nothing is marked unknown; later the id decodes', async () => {
      const registry = await startFakeRegistry();
      close = () => registry.close();
      const reader = await connectAvro({ url: registry.url }, TOPICS);
      // A schema id the reader has not seen: some other producer's record.
      const otherId = await new ConfluentSchemaSource({ url: registry.url }).register(
        'r.other-value',
        JSON.stringify({ type: 'record', name: 'Other', fields: [{ name: 'n', type: 'long' }] }),
      );
      const value = frame(otherId, Buffer.from([2]));
      registry.unavailable = true;
      await assert.rejects(reader.codec.prepare([value]), SchemaRegistryUnavailableError);
      registry.unavailable = false;
      await reader.codec.prepare([value]);
      // Known now: an Other record is not a batch record (InputError: invalid_batch), not unknown_schema.
      assert.throws(() => reader.codec.decodeBatchMessage(value), InputError);
      const notification = frame(otherId, Buffer.from([0x80]));
      registry.unavailable = true;
      await assert.rejects(reader.avroNotifications.prepare([notification]), SchemaRegistryUnavailableError);
      registry.unavailable = false;
      await reader.avroNotifications.prepare([notification]);
      const d = reader.avroNotifications.decode(notification);
      assert.ok(!d.ok && d.reason === 'invalid_avro', 'known id now: the body is what is wrong');
    });
  });

  test('redactRegistryUrl drops credentials and keeps the path', () => {
    assert.equal(
      redactRegistryUrl('https://user:pw@registry:8080/apis/ccompat/v7'),
      'https://registry:8080/apis/ccompat/v7',
    );
    assert.equal(redactRegistryUrl('http://registry:8081'), 'http://registry:8081');
    assert.equal(redactRegistryUrl('not a url'), '(unparsable URL)');
  });
});
