import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { backoffDelayMs } from '../../../src/handlers/http-retry.js';
import { HandlerParamsError } from '../../../src/handlers/param-checks.js';
import { batchBody, signature, WebhookHandler } from '../../../src/handlers/webhook.js';
import { datetime, type Event, float, int, text } from '../../../src/model/event.js';
import type { HandlerEnv } from '../../../src/pipeline/handler.js';
import { parseDatetime } from '../../../src/timex/instant.js';
import { type Recorded, startServer, testContext } from './http-test-server.js';

const T0 = parseDatetime('2026-01-02T03:04:05.123456Z');

function ev(id: string, type: string, traits: Event['traits'] = {}): Event {
  return { message_id: id, event_type: type, timestamp: T0, traits };
}

const EVENTS: Event[] = [
  ev('m-1', 'compute.instance.create.end', {
    instance_id: text('i-1'),
    memory_mb: int(512),
    ratio: float(1),
  }),
  ev('m-2', 'compute.instance.exists', { instance_id: text('i-1'), launched_at: datetime(T0) }),
];

function env(batchId = 'batch-7'): HandlerEnv {
  return {
    batch_id: batchId,
    stream_id: '42',
    stream_name: 'instance_usage',
    trigger: 'instance_usage',
    kind: 'fire',
    pipeline: 'usage_pipeline',
    distinguishing: {
      instance_id: text('i-1'),
      timestamp: {
        type: 'range',
        begin: parseDatetime('2026-01-02T00:00:00Z'),
        end: parseDatetime('2026-01-03T00:00:00Z'),
      },
    },
  };
}

async function deliver(handler: WebhookHandler, batchEnv = env(), events = EVENTS): Promise<void> {
  const out = await handler.handleEvents(events.slice(), batchEnv);
  assert.deepEqual(out, events, 'the events pass through unchanged');
  await handler.commit();
}

describe('webhook against a real HTTP server', () => {
  test('200: posts the documented body with Content-Type and Idempotency-Key', async (t) => {
    const server = await startServer(t, () => ({ status: 200 }));
    const { context, sleeps } = testContext();
    await deliver(new WebhookHandler({ url: `${server.base}/hook` }, context));
    assert.equal(server.requests.length, 1);
    const req = server.requests[0] as Recorded;
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/hook');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['idempotency-key'], 'batch-7');
    assert.equal(req.headers['x-winchester-signature'], undefined, 'no secret, no signature');
    assert.deepEqual(JSON.parse(req.body), {
      batch_id: 'batch-7',
      stream_id: '42',
      trigger: 'instance_usage',
      kind: 'fire',
      pipeline: 'usage_pipeline',
      distinguishing: {
        instance_id: 'i-1',
        timestamp: { begin: '2026-01-02T00:00:00.000000Z', end: '2026-01-03T00:00:00.000000Z' },
      },
      events: [
        {
          message_id: 'm-1',
          event_type: 'compute.instance.create.end',
          timestamp: '2026-01-02T03:04:05.123456Z',
          instance_id: 'i-1',
          memory_mb: 512,
          ratio: 1,
        },
        {
          message_id: 'm-2',
          event_type: 'compute.instance.exists',
          timestamp: '2026-01-02T03:04:05.123456Z',
          instance_id: 'i-1',
          launched_at: '2026-01-02T03:04:05.123456Z',
        },
      ],
    });
    assert.match(req.body, /"ratio":1\.0/, 'floats keep their type in the body text');
    assert.deepEqual(sleeps, []);
  });

  test('201 is success too', async (t) => {
    const server = await startServer(t, () => ({ status: 201, body: '{"ok":true}' }));
    await deliver(new WebhookHandler({ url: `${server.base}/hook` }, testContext().context));
    assert.equal(server.requests.length, 1);
  });

  test('secret: the server verifies X-Winchester-Signature (sha256=<hex> HMAC of the raw body)', async (t) => {
    const secret = 'correct horse battery staple';
    const server = await startServer(t, (req) => {
      const expected = `sha256=${createHmac('sha256', secret).update(req.body).digest('hex')}`;
      return req.headers['x-winchester-signature'] === expected
        ? { status: 204 }
        : { status: 401, body: 'bad signature' };
    });
    const { context } = testContext();
    await deliver(new WebhookHandler({ url: `${server.base}/hook`, secret }, context));
    assert.equal(server.requests.length, 1);

    const wrong = new WebhookHandler(
      { url: `${server.base}/hook`, secret: 'another secret', retries: 3 },
      context,
    );
    await assert.rejects(deliver(wrong), /answered 401: bad signature/);
    assert.equal(server.requests.length, 2, 'a 401 is not retried');
  });

  test('signature() is the HMAC-SHA256 of the UTF-8 body in lower-case hex', () => {
    assert.equal(
      signature('key', 'The quick brown fox jumps over the lazy dog'),
      'sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8',
    );
  });

  test('extra headers are sent; the handler-owned ones cannot be overridden', async (t) => {
    const server = await startServer(t, () => ({ status: 200 }));
    await deliver(
      new WebhookHandler(
        { url: `${server.base}/hook`, headers: { Authorization: 'Bearer abc', 'X-Num': 3 } },
        testContext().context,
      ),
    );
    assert.equal(server.requests[0]?.headers.authorization, 'Bearer abc');
    assert.equal(server.requests[0]?.headers['x-num'], '3');
    assert.throws(
      () =>
        new WebhookHandler(
          { url: `${server.base}/hook`, headers: { 'idempotency-key': 'x' } },
          testContext().context,
        ),
      /may not set 'idempotency-key'/,
    );
  });

  test('500 then 200: retried once after a jittered backoff', async (t) => {
    const server = await startServer(t, (_req, n) =>
      n === 0 ? { status: 500, body: 'oops' } : { status: 200 },
    );
    const { context, sleeps, logs } = testContext();
    await deliver(new WebhookHandler({ url: `${server.base}/hook`, retry_delay: 2 }, context));
    assert.equal(server.requests.length, 2);
    assert.equal(sleeps.length, 1);
    assert.ok(
      (sleeps[0] as number) >= 1000 && (sleeps[0] as number) <= 2000,
      `delay ${sleeps[0]} in [1000, 2000]`,
    );
    assert.equal(server.requests[0]?.body, server.requests[1]?.body, 'the same body is re-sent');
    assert.equal(server.requests[1]?.headers['idempotency-key'], 'batch-7');
    assert.ok(logs.some((l) => l.level === 'warn' && l.msg === 'delivery failed, retrying'));
  });

  test('503 forever: fails after retries + 1 attempts, backoff doubling up to max_retry_delay', async (t) => {
    const server = await startServer(t, () => ({ status: 503, body: 'maintenance' }));
    const { context, sleeps } = testContext();
    const handler = new WebhookHandler(
      { url: `${server.base}/hook`, retries: 4, retry_delay: 1, max_retry_delay: 3 },
      context,
    );
    await assert.rejects(deliver(handler), (err: Error) => {
      assert.match(err.message, /gave up after 5 attempts; last: .*answered 503: maintenance/);
      return true;
    });
    assert.equal(server.requests.length, 5);
    assert.equal(sleeps.length, 4);
    const bases = [1000, 2000, 3000, 3000];
    sleeps.forEach((s, i) => {
      const base = bases[i] as number;
      assert.ok(s >= base / 2 && s <= base, `retry ${i + 1}: ${s} within [${base / 2}, ${base}]`);
    });
  });

  test('400: not retried; the error carries an excerpt of the answer', async (t) => {
    const server = await startServer(t, () => ({ status: 400, body: '{"error":  "missing\n field"}' }));
    const { context, sleeps } = testContext();
    await assert.rejects(
      deliver(new WebhookHandler({ url: `${server.base}/hook` }, context)),
      /answered 400: \{"error": "missing field"\}/,
    );
    assert.equal(server.requests.length, 1);
    assert.deepEqual(sleeps, []);
  });

  test('408 and 429 are retried; Retry-After lengthens the wait up to the cap', async (t) => {
    const server = await startServer(t, (_req, n) =>
      n === 0
        ? { status: 408 }
        : n === 1
          ? { status: 429, headers: { 'Retry-After': '7' } }
          : { status: 200 },
    );
    const { context, sleeps } = testContext();
    await deliver(
      new WebhookHandler({ url: `${server.base}/hook`, retry_delay: 0.1, max_retry_delay: 5 }, context),
    );
    assert.equal(server.requests.length, 3);
    assert.ok((sleeps[0] as number) <= 100);
    assert.equal(sleeps[1], 5000, 'Retry-After 7 s, capped at max_retry_delay 5 s');
  });

  test('a 3xx is not followed (fetch would turn the POST into a GET)', async (t) => {
    const server = await startServer(t, () => ({ status: 302, headers: { Location: '/elsewhere' } }));
    await assert.rejects(
      deliver(new WebhookHandler({ url: `${server.base}/hook` }, testContext().context)),
      /answered 302 \(redirect to \/elsewhere not followed\)/,
    );
    assert.equal(server.requests.length, 1);
  });

  test('timeout: a slow answer is abandoned and retried', async (t) => {
    const server = await startServer(t, (_req, n) =>
      n === 0 ? { status: 200, delayMs: 2000 } : { status: 200 },
    );
    const { context, sleeps } = testContext();
    await deliver(new WebhookHandler({ url: `${server.base}/hook`, timeout: 0.2 }, context));
    assert.equal(server.requests.length, 2);
    assert.equal(sleeps.length, 1, 'the first attempt was abandoned, not answered late');
  });

  test('timeout on every attempt: the error says so', async (t) => {
    const server = await startServer(t, () => ({ status: 200, delayMs: 2000 }));
    await assert.rejects(
      deliver(
        new WebhookHandler({ url: `${server.base}/hook`, timeout: 0.1, retries: 1 }, testContext().context),
      ),
      /gave up after 2 attempts; last: POST http:\/\/127\.0\.0\.1:\d+\/hook: no answer within 0\.1 s/,
    );
    assert.equal(server.requests.length, 2);
  });

  test('connection refused and dropped connections are retried', async (t) => {
    // A port that was just free: nothing listens on it any more.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const { context, sleeps } = testContext();
    await assert.rejects(
      deliver(new WebhookHandler({ url: `http://127.0.0.1:${port}/hook`, retries: 2 }, context)),
      /gave up after 3 attempts; last: .*connection failed \(ECONNREFUSED/,
    );
    assert.equal(sleeps.length, 2);

    const server = await startServer(t, (_req, n) => (n === 0 ? 'destroy' : { status: 200 }));
    await deliver(new WebhookHandler({ url: `${server.base}/hook` }, testContext().context));
    assert.equal(server.requests.length, 2);
  });

  test('redelivery of the batch sends the same body and Idempotency-Key', async (t) => {
    const server = await startServer(t, () => ({ status: 200 }));
    const params = { url: `${server.base}/hook`, secret: 's' };
    await deliver(new WebhookHandler(params, testContext().context));
    await deliver(new WebhookHandler(params, testContext().context));
    const [a, b] = server.requests as [Recorded, Recorded];
    assert.equal(a.body, b.body);
    assert.equal(a.headers['idempotency-key'], b.headers['idempotency-key']);
    assert.equal(a.headers['x-winchester-signature'], b.headers['x-winchester-signature']);
  });

  test('rollback drops the batch: commit afterwards sends nothing', async (t) => {
    const server = await startServer(t, () => ({ status: 200 }));
    const h = new WebhookHandler({ url: `${server.base}/hook` }, testContext().context);
    await h.handleEvents(EVENTS.slice(), env());
    await h.rollback();
    await h.commit();
    assert.equal(server.requests.length, 0);
  });

  test('event_types selects the events posted; nothing selected, nothing posted', async (t) => {
    const server = await startServer(t, () => ({ status: 200 }));
    await deliver(
      new WebhookHandler(
        { url: `${server.base}/hook`, event_types: ['compute.*', '!*.create.*'] },
        testContext().context,
      ),
    );
    assert.deepEqual(
      (JSON.parse(server.requests[0]?.body ?? '{}') as { events: { message_id: string }[] }).events.map(
        (e) => e.message_id,
      ),
      ['m-2'],
    );
    await deliver(
      new WebhookHandler({ url: `${server.base}/hook`, event_types: 'image.*' }, testContext().context),
    );
    assert.equal(server.requests.length, 1);
  });
});

describe('webhook params', () => {
  const ctx = testContext().context;
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['url missing', {}, /webhook: param 'url' is required/],
    ['url not a string', { url: 5 }, /param 'url' must be a string, not number 5/],
    ['url not http', { url: 'ftp://x/y' }, /must be an http or https URL/],
    ['url not a URL', { url: 'not a url' }, /is not a URL/],
    [
      'timeout a string',
      { url: 'http://h/', timeout: '10' },
      /param 'timeout' must be a number, not the string "10"/,
    ],
    ['timeout zero', { url: 'http://h/', timeout: 0 }, /'timeout' must be greater than 0/],
    ['retries fractional', { url: 'http://h/', retries: 1.5 }, /'retries' must be a whole number/],
    ['retries negative', { url: 'http://h/', retries: -1 }, /'retries' must be at least 0/],
    ['headers a list', { url: 'http://h/', headers: ['a'] }, /'headers' must be a mapping, not a list/],
    ['header value a mapping', { url: 'http://h/', headers: { a: {} } }, /value of 'a' must be a string/],
    ['secret empty', { url: 'http://h/', secret: '' }, /'secret' must not be empty/],
    [
      'bad glob',
      { url: 'http://h/', event_types: ['compute.[z-a]'] },
      /'event_types' has an invalid glob 'compute.\[z-a\]'/,
    ],
    [
      'max below initial',
      { url: 'http://h/', retry_delay: 5, max_retry_delay: 1 },
      /'max_retry_delay' .* must not be less than 'retry_delay'/,
    ],
  ];
  for (const [name, params, message] of cases) {
    test(name, () => {
      assert.throws(
        () => new WebhookHandler(params, ctx),
        (err: unknown) => err instanceof HandlerParamsError && message.test(err.message),
      );
    });
  }

  test('unknown params are reported once per pipeline step, not per batch', () => {
    const { context, logs } = testContext();
    const params = Object.freeze({ url: 'http://h/', tiemout: 3 });
    new WebhookHandler(params, context);
    new WebhookHandler(params, context);
    const warnings = logs.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1);
    assert.deepEqual(warnings[0]?.fields, { params: ['tiemout'] });
  });

  test('batchBody keeps the documented key order', () => {
    const body = batchBody(env(), []);
    assert.deepEqual(Object.keys(JSON.parse(body) as object), [
      'batch_id',
      'stream_id',
      'trigger',
      'kind',
      'pipeline',
      'distinguishing',
      'events',
    ]);
  });
});

describe('backoff (the shared retry helper)', () => {
  test('each delay lies in [base/2, base]; the base doubles from retry_delay up to the cap', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 80 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (retry, initialDelayMs, extra, r) => {
          const maxDelayMs = initialDelayMs + extra;
          const base = Math.min(maxDelayMs, initialDelayMs * 2 ** (retry - 1));
          const d = backoffDelayMs(retry, { retries: 0, initialDelayMs, maxDelayMs }, () => r);
          return Number.isInteger(d) && d >= Math.floor(base / 2) && d <= base;
        },
      ),
    );
  });

  test('the extremes of the jitter', () => {
    const policy = { retries: 5, initialDelayMs: 1000, maxDelayMs: 5000 };
    assert.equal(
      backoffDelayMs(1, policy, () => 0),
      500,
    );
    assert.equal(
      backoffDelayMs(3, policy, () => 0.999999),
      4000,
    );
    assert.equal(
      backoffDelayMs(10, policy, () => 0),
      2500,
      'capped base',
    );
  });
});
