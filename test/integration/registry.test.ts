/**
 * Our registry client and Avro codec against a real Confluent-compatible registry: the Apicurio Registry
 * of `scripts/registry.sh up` (or any registry SCHEMA_REGISTRY_URL names). The unit tests use an in-test
 * fake of the same REST API; this file checks that what the fake answers is what a real one answers,
 * for everything src/kafka/schema-registry.ts relies on (ids, idempotent registration, schemas by id,
 * 404 for an unknown id). Skipped, with the reason, when SCHEMA_REGISTRY_URL is not set.
 *
 * Also scripts/registry.sh's failure paths, each with its own state directory, cache and port, so they are
 * fast (no build, no registry started) and never touch a registry other tests use.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfluentSchemaSource, NotificationSchemas } from '../../src/kafka/schema-registry.js';
import type { Event } from '../../src/model/event.js';
import {
  AvroCodec,
  BATCH_MESSAGE_SCHEMA,
  STREAM_RECORD_SCHEMA,
  valueSubject,
} from '../../src/serde/avro-codec.js';
import { frame, framedSchemaId, UnknownSchemaError } from '../../src/serde/codec.js';
import { INTEGRATION_TIMEOUT_MS, uniqueName } from '../helpers/integration.js';

const url = process.env.SCHEMA_REGISTRY_URL?.trim().replace(/\/+$/, '') ?? '';
const skip =
  url === ''
    ? 'SCHEMA_REGISTRY_URL is not set: start a real registry with `scripts/registry.sh up` (npm test reads ' +
      'the .infra/registry.env it writes); the in-test fake registry is covered by test/unit/serde'
    : false;

/** The schema as parsed JSON, whatever whitespace the registry gives it back with. */
async function schemaFile(file: URL): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8'));
}

async function getJson(path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${url}${path}`, { headers: { accept: 'application/vnd.schemaregistry.v1+json' } });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: kept as text for the assertion message.
  }
  return { status: res.status, body };
}

const event: Event = {
  message_id: '7d2c0f4e-0000-4000-8000-000000000001',
  event_type: 'compute.instance.exists',
  timestamp: 1_700_000_000_123_457,
  traits: {
    instance_id: { type: 'text', value: 'i-1' },
    memory_mb: { type: 'int', value: 2 ** 53 - 1 },
    ratio: { type: 'float', value: 1 },
    audit_period_beginning: { type: 'datetime', value: 1_699_999_999_000_001 },
    __proto__: { type: 'text', value: 'a trait name like any other' },
  },
};

function plainEvent(e: Event): unknown {
  return { ...e, traits: Object.fromEntries(Object.entries(e.traits)) };
}

describe('a real schema registry (SCHEMA_REGISTRY_URL)', { skip, timeout: INTEGRATION_TIMEOUT_MS }, () => {
  test('both record schemas register, again under the same ids, and read back by id', async () => {
    const source = new ConfluentSchemaSource({ url });
    const topic = uniqueName('registry');
    for (const file of [STREAM_RECORD_SCHEMA, BATCH_MESSAGE_SCHEMA]) {
      const text = await readFile(file, 'utf8');
      const subject = valueSubject(`${topic}.${file.pathname.endsWith('stream-record.avsc') ? 's' : 'b'}`);
      const id = await source.register(subject, text);
      assert.ok(Number.isSafeInteger(id) && id >= 0, `an id: ${id}`);
      assert.equal(await source.register(subject, text), id, `registering ${subject} again gives id ${id}`);

      const byId = await getJson(`/schemas/ids/${id}`);
      assert.equal(byId.status, 200, JSON.stringify(byId.body));
      const schema = (byId.body as { schema?: unknown }).schema;
      assert.equal(typeof schema, 'string', JSON.stringify(byId.body));
      assert.deepEqual(JSON.parse(schema as string), await schemaFile(file), 'the registry keeps the schema');

      const versions = await getJson(`/subjects/${encodeURIComponent(subject)}/versions`);
      assert.deepEqual(versions, { status: 200, body: [1] }, 'a second registration adds no version');
    }
  });

  test('the Avro codec encodes through one registration and decodes through another (as two workers)', async () => {
    const topic = uniqueName('registry');
    const topics = { streamEventsTopic: `${topic}.stream-events`, batchesTopic: `${topic}.batches` };
    const writer = await AvroCodec.create(new ConfluentSchemaSource({ url }), topics);
    const reader = await AvroCodec.create(new ConfluentSchemaSource({ url }), topics);
    assert.deepEqual(reader.schemaIds, writer.schemaIds, 'a restarted worker registers under the same ids');
    assert.notEqual(writer.schemaIds.streamRecord, writer.schemaIds.batchMessage);

    const record = {
      trigger: 'instance_usage',
      key: 'i-1',
      distinguishing: { instance_id: { type: 'text' as const, value: 'i-1' } },
      event,
      watermark: 1_700_000_000_123_457,
    };
    const value = writer.encodeStreamEvent(record);
    assert.equal(framedSchemaId(value), writer.schemaIds.streamRecord);
    await reader.prepare([value]);
    const back = reader.decodeStreamRecord(value);
    assert.ok(back.type === 'event', JSON.stringify(back));
    assert.deepStrictEqual(plainEvent(back.event), plainEvent(event));
    assert.deepStrictEqual(Object.entries(back.distinguishing), Object.entries(record.distinguishing));
    assert.equal(back.watermark, record.watermark);
    assert.deepEqual(reader.decodeStreamRecord(writer.encodeTick(42)), { type: 'tick', time: 42 });

    const batch = {
      batchId: 'b-1',
      streamId: 's-1',
      trigger: 'instance_usage',
      kind: 'fire' as const,
      pipeline: 'usage',
      distinguishing: record.distinguishing,
      first: event.timestamp,
      last: event.timestamp,
      events: [event],
    };
    const batchBack = reader.decodeBatchMessage(writer.encodeBatch(batch));
    assert.ok(batchBack.type === 'inline');
    assert.deepStrictEqual(batchBack.batch.events.map(plainEvent), [plainEvent(event)]);
    assert.equal(batchBack.batch.pipeline, 'usage');
    const ref = { batchId: 'b-1', streamId: 's-1', kind: 'expire' as const, bytes: 123 };
    assert.deepEqual(reader.decodeBatchMessage(writer.encodeBatchReference(ref)), {
      type: 'reference',
      reference: ref,
    });
  });

  test('an id the registry does not know: 404, read as UnknownSchemaError (a dead letter, not an outage)', async () => {
    const unknown = 2_000_000_000;
    const raw = await getJson(`/schemas/ids/${unknown}`);
    assert.equal(raw.status, 404, JSON.stringify(raw.body));
    await assert.rejects(
      new NotificationSchemas({ url }).typeOf(unknown),
      (e) => e instanceof UnknownSchemaError && e.schemaId === unknown,
    );
    const topic = uniqueName('registry');
    const codec = await AvroCodec.create(new ConfluentSchemaSource({ url }), {
      streamEventsTopic: `${topic}.stream-events`,
      batchesTopic: `${topic}.batches`,
    });
    const value = frame(unknown, Buffer.from([0]));
    await codec.prepare([value]);
    assert.throws(() => codec.decodeStreamRecord(value), UnknownSchemaError);
  });
});

const SCRIPT = new URL('../../scripts/registry.sh', import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runRegistry(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile('bash', [SCRIPT, ...args], { env, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A state directory, a build cache and a port of the test's own; removed when it ends. */
function sandbox(t: { after(fn: () => unknown): void }, extra: NodeJS.ProcessEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'registry-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    INFRA_DIR: join(dir, 'infra'),
    REGISTRY_CACHE_DIR: join(dir, 'cache'),
    // Nothing listens there (checked by the tests that need it).
    REGISTRY_PORT: '1',
    ...extra,
  };
  return { dir, env };
}

describe('scripts/registry.sh failure paths', { timeout: INTEGRATION_TIMEOUT_MS }, () => {
  test('an unknown command: usage, exit 2', async () => {
    const run = await runRegistry(['start'], process.env);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /usage: .*registry\.sh up\|down\|status/);
  });

  test('a Maven that cannot fetch: exit 1 with its error line, the log named, no registry.env', async (t) => {
    const { dir, env } = sandbox(t);
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'mvn'),
      '#!/bin/sh\necho "[ERROR] Failed to execute goal: Could not transfer artifact from central"\nexit 1\n',
    );
    chmodSync(join(bin, 'mvn'), 0o755);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const run = await runRegistry(['up'], {
      ...env,
      REGISTRY_PORT: String(port),
      PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`,
    });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /maven: \[ERROR\] Failed to execute goal: Could not transfer artifact/);
    assert.match(
      run.stderr,
      /registry: error: fetching the served config modules failed \(is Maven Central reachable\?\)\. Full log: .*build\.log/,
    );
    assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
    assert.ok(!existsSync(join(env.INFRA_DIR as string, 'registry.env')));
  });

  test('a taken port: exit 1 naming the process holding it and REGISTRY_PORT, before any build', async (t) => {
    const { env } = sandbox(t);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => server.close());
    const { port } = server.address() as { port: number };
    const run = await runRegistry(['up'], { ...env, REGISTRY_PORT: String(port) });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, new RegExp(`port ${port} is already in use by pid ${process.pid} \\(`));
    assert.match(run.stderr, /pick another port with REGISTRY_PORT=<port>/);
    assert.doesNotMatch(run.stderr, /building/);
  });

  test('a stale pid file (a live process that is not the registry): stopped, forgotten, never killed', async (t) => {
    const { env } = sandbox(t);
    const state = join(env.INFRA_DIR as string, 'registry');
    mkdirSync(state, { recursive: true });
    writeFileSync(join(state, 'registry.pid'), `${process.pid}\n`);
    const status = await runRegistry(['status'], env);
    assert.equal(status.code, 1);
    assert.match(status.stdout, /registry {2}stopped/);
    assert.ok(!existsSync(join(state, 'registry.pid')), 'the stale pid file is removed');
    writeFileSync(join(state, 'registry.pid'), `${process.pid}\n`);
    writeFileSync(join(env.INFRA_DIR as string, 'registry.env'), 'SCHEMA_REGISTRY_URL=http://127.0.0.1:1\n');
    const down = await runRegistry(['down'], env);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stderr, /registry: not running/);
    assert.ok(!existsSync(join(env.INFRA_DIR as string, 'registry.env')), 'down removes registry.env');
  });
});
