import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AtomPubHandler,
  atomEntry,
  cufStatus,
  cufXml,
  licenseAttributes,
  usageTimes,
} from '../../../src/handlers/atompub.js';
import { HandlerParamsError } from '../../../src/handlers/param-checks.js';
import { datetime, type Event, float, int, type TraitValue, text } from '../../../src/model/event.js';
import { eventFromJson } from '../../../src/model/event-json.js';
import type { HandlerEnv } from '../../../src/pipeline/handler.js';
import { formatInstant, parseDatetime } from '../../../src/timex/instant.js';
import { type Recorded, type Reply, startServer, testContext } from './http-test-server.js';

const dt = (s: string) => datetime(parseDatetime(s));

function ev(id: string, type: string, traits: Record<string, TraitValue> = {}): Event {
  return { message_id: id, event_type: type, timestamp: parseDatetime('2015-08-11T01:02:03Z'), traits };
}

const ENV: HandlerEnv = {
  batch_id: 'b-1',
  stream_id: '9',
  stream_name: 't',
  trigger: 't',
  kind: 'fire',
  pipeline: 'p',
  distinguishing: {},
};

/** The usage record of the reference's own CUF test, as our typed event. */
const CUF_EVENT = ev('1234-56789', 'test.thing', {
  audit_period_beginning: dt('2015-08-10 00:00:00'),
  audit_period_ending: dt('2015-08-11 00:00:00'),
  launched_at: dt('2015-08-09 15:21:00'),
  instance_id: text('98765-4321'),
  state: text('active'),
  state_description: text(''),
  rax_options: text('4'),
});

const CUF_EXPECTED =
  '<event xmlns="http://docs.rackspace.com/core/event" xmlns:nova="http://docs.rackspace.com/event/nova" ' +
  'version="1" id="1234-56789" resourceId="98765-4321" resourceName="" dataCenter="TST1" region="TST" ' +
  'tenantId="" startTime="2015-08-10T00:00:00Z" endTime="2015-08-11T00:00:00Z" type="USAGE">' +
  '<nova:product version="1" serviceCode="CloudServersOpenStack" resourceType="SERVER" flavorId="" ' +
  'flavorName="" status="ACTIVE" osLicenseType="WINDOWS" bandwidthIn="" bandwidthOut=""/></event>';

/** Unescapes the five XML entities the handler writes. */
const xmlUnescape = (s: string) =>
  s.replace(
    /&(amp|lt|gt|quot|apos);/g,
    (_m, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" })[e] as string,
  );

/** A feed on `/feed` and, when given, a keystone-style auth server on `/tokens`. */
async function feed(
  t: { after(fn: () => unknown): void },
  onFeed: (req: Recorded, n: number) => Reply,
  onAuth: (req: Recorded, n: number) => Reply = (_r, n) => ({
    status: 200,
    body: JSON.stringify({ access: { token: { id: `tok-${n + 1}` } } }),
  }),
) {
  return startServer(t, (req, n) => (req.path === '/tokens' ? onAuth(req, n) : onFeed(req, n)));
}

async function run(h: AtomPubHandler, events: Event[]): Promise<void> {
  const out = await h.handleEvents(events.slice(), ENV);
  assert.deepEqual(out, events);
  await h.commit();
}

describe('atompub content', () => {
  test('cuf_xml: the usage record of the reference test, byte for byte', () => {
    assert.equal(cufXml(CUF_EVENT, { data_center: 'TST1', region: 'TST' }), CUF_EXPECTED);
  });

  test('atom entry: id, categories, original_message_id, title, content type', () => {
    const event = ev('12-34', 'test.thing', { original_message_id: text('56-78') });
    assert.equal(
      atomEntry(event, 'test.thing.bar', 'TEST_CONTENT', 'test/thing', 'Server', []),
      '<atom:entry xmlns:atom="http://www.w3.org/2005/Atom"><atom:id>urn:uuid:12-34</atom:id>' +
        '<atom:category term="test.thing.bar" /><atom:category term="original_message_id:56-78" />' +
        '<atom:title type="text">Server</atom:title><atom:content type="test/thing">TEST_CONTENT' +
        '</atom:content></atom:entry>',
    );
    assert.match(
      atomEntry(ev('1', 'x'), 'x', '', 'a/b', undefined, ['first', 'a&b']),
      /<atom:category term="first" \/><atom:category term="a&amp;b" \/><atom:category term="x" \/><atom:title type="text">x<\/atom:title>/,
    );
  });

  test('values are XML-escaped (the reference pasted them raw)', () => {
    const xml = cufXml(ev('m', 't', { display_name: text('a <"b"> & c') }), {});
    assert.match(xml, /resourceName="a &lt;&quot;b&quot;&gt; &amp; c"/);
  });

  test('extra_info wins over traits; numbers and datetimes print as Python would', () => {
    const xml = cufXml(
      ev('m', 't', {
        region: text('OWN'),
        bandwidth_in: int(12),
        bandwidth_out: float(3),
        tenant_id: dt('2015-01-02 03:04:05.5'),
      }),
      { region: 'CONF' },
    );
    assert.match(xml, /region="CONF"/);
    assert.match(xml, /bandwidthIn="12" bandwidthOut="3.0"/);
    assert.match(xml, /tenantId="2015-01-02 03:04:05.500000"/);
  });

  test('usage period: launch, termination and deletion against the audit period', () => {
    const apb = dt('2015-08-10 00:00:00');
    const ape = dt('2015-08-11 00:00:00');
    const fmt = (e: Event) => {
      const { start, end } = usageTimes(e);
      return [start === undefined ? '' : formatInstant(start), end === undefined ? '' : formatInstant(end)];
    };
    const day = (s: string) => `2015-08-${s}.000000Z`;
    assert.deepEqual(
      fmt(
        ev('m', 't', {
          audit_period_beginning: apb,
          audit_period_ending: ape,
          launched_at: dt('2015-08-10 06:00:00'),
        }),
      ),
      [day('10T06:00:00'), day('11T00:00:00')],
    );
    assert.deepEqual(
      fmt(
        ev('m', 't', {
          audit_period_beginning: apb,
          audit_period_ending: ape,
          deleted_at: dt('2015-08-10 12:00:00'),
        }),
      ),
      [day('10T00:00:00'), day('10T12:00:00')],
      'deleted_at stands in for terminated_at',
    );
    assert.deepEqual(
      fmt(
        ev('m', 't', {
          audit_period_beginning: apb,
          audit_period_ending: ape,
          launched_at: dt('2015-08-10 18:00:00'),
          terminated_at: dt('2015-08-10 12:00:00'),
        }),
      ),
      [day('10T00:00:00'), day('10T12:00:00')],
      'a period ending before it starts starts at the audit period start',
    );
    assert.deepEqual(fmt(ev('m', 't', {})), ['', '']);
    // Launched, no audit period: Python 2 ordered None below a datetime, so "start > end (None)" held and
    // the start fell back to the (absent) audit period start.
    assert.deepEqual(fmt(ev('m', 't', { launched_at: dt('2015-08-10 18:00:00') })), ['', '']);
  });

  test('license flags of rax_options', () => {
    const lic = (v: TraitValue | undefined) =>
      licenseAttributes(ev('m', 't', v === undefined ? {} : { rax_options: v }));
    assert.equal(lic(undefined), 'osLicenseType="LINUX"');
    assert.equal(lic(int(1)), 'osLicenseType="RHEL"');
    assert.equal(lic(int(5)), 'osLicenseType="WINDOWS"');
    assert.equal(lic(int(64 + 4)), 'osLicenseType="VYATTA"');
    assert.equal(lic(text('12')), 'osLicenseType="WINDOWS" applicationLicense="MSSQL"');
    assert.equal(lic(int(8 + 32)), 'osLicenseType="LINUX" applicationLicense="MSSQL_WEB"');
    assert.equal(
      lic(int(-1)),
      'osLicenseType="VYATTA" applicationLicense="MSSQL_WEB"',
      "two's complement, as Python",
    );
    assert.throws(() => lic(text('four')), /rax_options must be an integer, not 'four'/);
  });

  test('status from state and state_description', () => {
    const st = (state?: string, task?: string) =>
      cufStatus(
        ev('m', 't', {
          ...(state === undefined ? {} : { state: text(state) }),
          ...(task === undefined ? {} : { state_description: text(task) }),
        }),
      );
    assert.equal(st('active'), 'ACTIVE');
    assert.equal(st('active', 'rebooting_hard'), 'HARD_REBOOT');
    assert.equal(st('active', 'resize_finish'), 'RESIZE');
    assert.equal(st('active', 'something_else'), 'ACTIVE');
    assert.equal(st('resized', 'resize_reverting'), 'REVERT_RESIZE');
    assert.equal(st('resized'), 'VERIFY_RESIZE');
    assert.equal(st('soft-delete'), 'SOFT_DELETED');
    assert.equal(st('shelved_offloaded'), 'SHELVED_OFFLOADED');
    assert.equal(st('constructor'), 'UNKNOWN', 'no inherited members mistaken for states');
    assert.equal(st(), 'UNKNOWN');
  });
});

describe('atompub against a real HTTP server', () => {
  test('json: one entry per selected event, Content-Type application/atom+xml, escaped JSON content', async (t) => {
    const server = await feed(t, () => ({ status: 201 }));
    const events = [
      ev('m-1', 'compute.instance.exists.verified', { name: text('a<b&c'), ratio: float(1) }),
      ev('m-2', 'compute.instance.exists.failed'),
      ev('m-3', 'compute.instance.create.end'),
    ];
    const { context, sleeps } = testContext();
    await run(
      new AtomPubHandler(
        { url: `${server.base}/feed`, event_types: ['compute.instance.exists.*', '!*.failed'] },
        context,
      ),
      events,
    );
    assert.equal(server.requests.length, 1);
    const req = server.requests[0] as Recorded;
    assert.equal(req.headers['content-type'], 'application/atom+xml');
    assert.equal(req.headers['x-auth-token'], undefined, 'no auth configured, no token');
    const m = /<atom:content type="application\/json">(.*)<\/atom:content><\/atom:entry>$/.exec(req.body);
    assert.ok(m, req.body);
    const back = eventFromJson(xmlUnescape(m[1] as string));
    assert.deepEqual({ ...back, traits: { ...back.traits } }, events[0]);
    assert.match(
      req.body,
      /<atom:id>urn:uuid:m-1<\/atom:id><atom:category term="compute.instance.exists.verified" \/>/,
    );
    assert.deepEqual(sleeps, []);
  });

  test('cuf_xml: the entry wraps the usage record with the .cuf event type', async (t) => {
    const server = await feed(t, () => ({ status: 200 }));
    await run(
      new AtomPubHandler(
        {
          url: `${server.base}/feed`,
          content_format: 'cuf_xml',
          extra_info: { data_center: 'TST1', region: 'TST' },
          categories: ['usage'],
        },
        testContext().context,
      ),
      [CUF_EVENT],
    );
    assert.equal(
      server.requests[0]?.body,
      '<atom:entry xmlns:atom="http://www.w3.org/2005/Atom"><atom:id>urn:uuid:1234-56789</atom:id>' +
        '<atom:category term="usage" /><atom:category term="test.thing.cuf" />' +
        '<atom:title type="text">test.thing.cuf</atom:title><atom:content type="application/xml">' +
        CUF_EXPECTED +
        '</atom:content></atom:entry>',
    );
  });

  test('token: obtained with the RAX-KSKEY credentials, sent as X-Auth-Token, reused by later batches', async (t) => {
    const server = await feed(t, () => ({ status: 201 }));
    const params = Object.freeze({
      url: `${server.base}/feed`,
      auth_server: `${server.base}/tokens`,
      auth_user: 'winchester',
      auth_key: 'k3y',
      auth_tenant: 'usage',
    });
    await run(new AtomPubHandler(params, testContext().context), [ev('m-1', 'a'), ev('m-2', 'b')]);
    await run(new AtomPubHandler(params, testContext().context), [ev('m-3', 'c')]);
    const auth = server.on('/tokens');
    assert.equal(auth.length, 1, 'one token for both batches of the step');
    assert.deepEqual(JSON.parse(auth[0]?.body ?? ''), {
      auth: { 'RAX-KSKEY:apiKeyCredentials': { username: 'winchester', apiKey: 'k3y' }, tenantName: 'usage' },
    });
    assert.equal(auth[0]?.headers['content-type'], 'application/json');
    assert.deepEqual(
      server.on('/feed').map((r) => r.headers['x-auth-token']),
      ['tok-1', 'tok-1', 'tok-1'],
    );
  });

  test('401 → the token is renewed and the entry re-sent at once → 200', async (t) => {
    const server = await feed(t, (req) =>
      req.headers['x-auth-token'] === 'tok-2' ? { status: 200 } : { status: 401, body: 'token expired' },
    );
    const { context, sleeps } = testContext();
    await run(
      new AtomPubHandler(
        { url: `${server.base}/feed`, auth_server: `${server.base}/tokens`, auth_user: 'u', auth_key: 'k' },
        context,
      ),
      [ev('m-1', 'a')],
    );
    assert.deepEqual(
      server.on('/feed').map((r) => r.headers['x-auth-token']),
      ['tok-1', 'tok-2'],
    );
    assert.equal(server.on('/tokens').length, 2);
    assert.deepEqual(sleeps, [], 'no backoff for a renewed token');
  });

  test('401 with a fresh token is not retried', async (t) => {
    const server = await feed(t, () => ({ status: 401, body: 'nope' }));
    await assert.rejects(
      run(
        new AtomPubHandler(
          { url: `${server.base}/feed`, auth_server: `${server.base}/tokens`, auth_user: 'u', auth_key: 'k' },
          testContext().context,
        ),
        [ev('m-1', 'a')],
      ),
      /refused a freshly issued token \(401\): nope/,
    );
    assert.equal(server.on('/feed').length, 2);
  });

  test('the token is renewed before the expiry the auth server announced', async (t) => {
    const server = await feed(
      t,
      () => ({ status: 201 }),
      (_req, n) => ({
        status: 200,
        body: JSON.stringify({ access: { token: { id: `tok-${n + 1}`, expires: '2026-01-01T01:00:00Z' } } }),
      }),
    );
    const params = Object.freeze({
      url: `${server.base}/feed`,
      auth_server: `${server.base}/tokens`,
      auth_user: 'u',
      auth_key: 'k',
    });
    const { context, clock } = testContext();
    clock.ms = Date.parse('2026-01-01T00:58:00Z');
    await run(new AtomPubHandler(params, context), [ev('m-1', 'a')]);
    clock.ms = Date.parse('2026-01-01T00:59:30Z'); // within a minute of expiry
    await run(new AtomPubHandler(params, context), [ev('m-2', 'a')]);
    assert.deepEqual(
      server.on('/feed').map((r) => r.headers['x-auth-token']),
      ['tok-1', 'tok-2'],
    );
  });

  test('auth server refusing the credentials fails without retrying', async (t) => {
    const server = await feed(
      t,
      () => ({ status: 201 }),
      () => ({ status: 401, body: '{"unauthorized":{"message":"Username or api key is invalid."}}' }),
    );
    const { context, sleeps } = testContext();
    await assert.rejects(
      run(
        new AtomPubHandler(
          {
            url: `${server.base}/feed`,
            auth_server: `${server.base}/tokens`,
            auth_user: 'u',
            auth_key: 'bad',
          },
          context,
        ),
        [ev('m-1', 'a'), ev('m-2', 'a')],
      ),
      (err: Error) => {
        assert.match(
          err.message,
          /m-1 \(a\): atompub: auth server http:.*\/tokens answered 401: .*api key is invalid/,
        );
        assert.match(err.message, /m-2 \(a\): not tried, no token/);
        return true;
      },
    );
    assert.equal(server.on('/tokens').length, 1, 'refused credentials are not asked again for every entry');
    assert.equal(server.on('/feed').length, 0);
    assert.deepEqual(sleeps, []);
  });

  test('auth server down: retried with backoff like the feed', async (t) => {
    const server = await feed(
      t,
      () => ({ status: 201 }),
      (_req, n) => (n === 0 ? { status: 503 } : { status: 200, body: '{"access":{"token":{"id":"tok"}}}' }),
    );
    const { context, sleeps } = testContext();
    await run(
      new AtomPubHandler(
        {
          url: `${server.base}/feed`,
          auth_server: `${server.base}/tokens`,
          auth_user: 'u',
          auth_key: 'k',
          wait_interval: 1,
        },
        context,
      ),
      [ev('m-1', 'a')],
    );
    assert.equal(sleeps.length, 1);
    assert.equal(server.on('/feed')[0]?.headers['x-auth-token'], 'tok');
  });

  test('409: the feed already has the entry — delivered', async (t) => {
    const server = await feed(t, () => ({ status: 409, body: 'duplicate' }));
    const { context, sleeps } = testContext();
    await run(new AtomPubHandler({ url: `${server.base}/feed` }, context), [ev('m-1', 'a'), ev('m-2', 'a')]);
    assert.equal(server.requests.length, 2);
    assert.deepEqual(sleeps, []);
  });

  test('400: not retried, reported with the answer; the other entries are still sent', async (t) => {
    const server = await feed(t, (req) =>
      req.body.includes('urn:uuid:bad')
        ? { status: 400, body: '<error>invalid content</error>' }
        : { status: 201 },
    );
    const { context, sleeps } = testContext();
    await assert.rejects(
      run(new AtomPubHandler({ url: `${server.base}/feed` }, context), [ev('bad', 'a'), ev('good', 'a')]),
      /atompub: 1 of 2 entries not delivered .*bad \(a\): .*rejected the content \(400\): <error>invalid content<\/error>/,
    );
    assert.equal(server.requests.length, 2);
    assert.deepEqual(sleeps, []);
  });

  test('500 → retry → 200, backoff from wait_interval', async (t) => {
    const server = await feed(t, (_req, n) => (n === 0 ? { status: 500 } : { status: 200 }));
    const { context, sleeps } = testContext();
    await run(new AtomPubHandler({ url: `${server.base}/feed` }, context), [ev('m-1', 'a')]);
    assert.equal(server.requests.length, 2);
    assert.equal(sleeps.length, 1);
    assert.ok(
      (sleeps[0] as number) >= 15_000 && (sleeps[0] as number) <= 30_000,
      'default wait_interval 30 s, half jittered',
    );
  });

  test('503 forever: fails after retries + 1 attempts and does not try the remaining entries', async (t) => {
    const server = await feed(t, () => ({ status: 503, body: 'down' }));
    const { context, sleeps } = testContext();
    await assert.rejects(
      run(
        new AtomPubHandler(
          { url: `${server.base}/feed`, retries: 3, wait_interval: 1, max_wait: 2 },
          context,
        ),
        [ev('m-1', 'a'), ev('m-2', 'a')],
      ),
      (err: Error) => {
        assert.match(err.message, /2 of 2 entries not delivered/);
        assert.match(
          err.message,
          /m-1 \(a\): atompub POST .* gave up after 4 attempts; last: .*answered 503/,
        );
        assert.match(err.message, /m-2 \(a\): not tried, the feed is unavailable/);
        return true;
      },
    );
    assert.equal(server.requests.length, 4);
    assert.equal(sleeps.length, 3);
    assert.ok(sleeps.every((s) => s <= 2000));
  });

  test('the error names the first five failures and counts the rest', async (t) => {
    const server = await feed(t, () => ({ status: 503 }));
    const events = Array.from({ length: 8 }, (_, i) => ev(`m-${i}`, 'a'));
    await assert.rejects(
      run(new AtomPubHandler({ url: `${server.base}/feed`, retries: 0 }, testContext().context), events),
      (err: Error) => {
        assert.match(err.message, /^atompub: 8 of 8 entries not delivered/);
        assert.match(err.message, /m-4 \(a\): not tried, the feed is unavailable; and 3 more$/);
        assert.doesNotMatch(err.message, /m-5/);
        return true;
      },
    );
    assert.equal(server.requests.length, 1);
  });

  test('timeout: an entry whose answer is too slow is re-sent', async (t) => {
    const server = await feed(t, (_req, n) => (n === 0 ? { status: 201, delayMs: 2000 } : { status: 201 }));
    const { context, sleeps } = testContext();
    await run(new AtomPubHandler({ url: `${server.base}/feed`, http_timeout: 0.2 }, context), [
      ev('m-1', 'a'),
    ]);
    assert.equal(server.requests.length, 2);
    assert.equal(sleeps.length, 1);
  });

  test('an event that cannot be rendered fails alone', async (t) => {
    const server = await feed(t, () => ({ status: 201 }));
    await assert.rejects(
      run(
        new AtomPubHandler({ url: `${server.base}/feed`, content_format: 'cuf_xml' }, testContext().context),
        [ev('m-1', 'a', { rax_options: text('lots') }), ev('m-2', 'a', { state: text('active') })],
      ),
      /1 of 2 entries not delivered .*m-1 \(a\): cannot render: rax_options must be an integer/,
    );
    assert.equal(server.requests.length, 1);
    assert.match(server.requests[0]?.body ?? '', /id="m-2"/);
  });

  test('rollback drops the entries', async (t) => {
    const server = await feed(t, () => ({ status: 201 }));
    const h = new AtomPubHandler({ url: `${server.base}/feed` }, testContext().context);
    await h.handleEvents([ev('m-1', 'a')], ENV);
    await h.rollback();
    await h.commit();
    assert.equal(server.requests.length, 0);
  });
});

describe('atompub params', () => {
  const ctx = testContext().context;
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['url missing', {}, /atompub: param 'url' is required/],
    [
      'content_format unknown',
      { url: 'http://h/', content_format: 'xml' },
      /'content_format' must be one of 'json', 'cuf_xml', not 'xml'/,
    ],
    [
      'auth_server without user',
      { url: 'http://h/', auth_server: 'http://a/' },
      /'auth_user' and 'auth_key' are required with 'auth_server'/,
    ],
    ['user without server', { url: 'http://h/', auth_user: 'u', auth_key: 'k' }, /need 'auth_server'/],
    ['extra_info a list', { url: 'http://h/', extra_info: ['a'] }, /'extra_info' must be a mapping/],
    ['categories numbers', { url: 'http://h/', categories: [1] }, /'categories' item 1 must be a string/],
    [
      'http_timeout negative',
      { url: 'http://h/', http_timeout: -1 },
      /'http_timeout' must be greater than 0/,
    ],
    [
      'max_wait below wait_interval',
      { url: 'http://h/', wait_interval: 30, max_wait: 10 },
      /'max_wait' must not be less than 'wait_interval'/,
    ],
  ];
  for (const [name, params, message] of cases) {
    test(name, () => {
      assert.throws(
        () => new AtomPubHandler(params, ctx),
        (err: unknown) => err instanceof HandlerParamsError && message.test(err.message),
      );
    });
  }

  test("the reference's defaults: empty auth strings mean no auth", () => {
    new AtomPubHandler(
      { url: 'http://h/', auth_user: '', auth_key: '', auth_server: '', event_types: 'compute.*' },
      ctx,
    );
  });
});
