/**
 * The `atompub` handler (the reference's AtomPubHandler): POSTs each selected event of a batch as an
 * Atom entry to a feed, its content the event as JSON or as a Rackspace CUF usage record (`cuf_xml`),
 * authenticated with a token from a keystone-style auth server. Documented in docs/handlers.md.
 */
import type { EventTypeMatcher } from '../glob.js';
import type { Logger } from '../log.js';
import type { Event, TraitValue } from '../model/event.js';
import { eventToJson, formatFloat } from '../model/event-json.js';
import type { Handler, HandlerContext, HandlerEnv } from '../pipeline/handler.js';
import { type Instant, parseDatetime, toFields } from '../timex/instant.js';
import {
  answerErrorOptions,
  type BackoffPolicy,
  DeliveryError,
  excerpt,
  httpRequest,
  realSleep,
  withRetries,
} from './http-retry.js';
import { HandlerParamsError, ParamReader, warnOncePerStep } from './param-checks.js';

const KNOWN_PARAMS = new Set([
  'url',
  'event_types',
  'extra_info',
  'content_format',
  'title',
  'categories',
  'auth_user',
  'auth_key',
  'auth_server',
  'auth_tenant',
  'wait_interval',
  'max_wait',
  'http_timeout',
  'retries',
]);

/** How many failed entries commit()'s error names. */
const MAX_REPORTED_FAILURES = 5;

/** A token is renewed this long before the expiry the auth server announced. */
const TOKEN_EXPIRY_MARGIN_MS = 60_000;

/** The auth server refused or failed: every other entry would meet the same answer. */
class AuthError extends DeliveryError {}

interface CachedToken {
  readonly id: string;
  /** Machine-clock milliseconds after which the token is renewed before use; undefined: never. */
  readonly renewAtMs: number | undefined;
}

// The reference keeps one token for every AtomPubHandler (a class attribute). Handlers are created per
// batch, so the token must outlive them; keying it on the step's params object (the same deeply frozen
// object for every batch of a pipeline step) shares it between batches without a process-wide
// registry, keeps different credentials apart, and lets it go with the configuration.
const tokens = new WeakMap<object, { token: CachedToken | undefined }>();

interface Entry {
  readonly messageId: string;
  readonly eventType: string;
  /** The Atom entry, or why the event could not be rendered. */
  readonly atom: string | undefined;
  readonly error: string | undefined;
}

/**
 * Publishes events to an AtomPub feed. Params (the reference's names, so its pipelines.yaml loads):
 *
 * - `url` (string, required): the feed to POST entries to.
 * - `event_types` (glob or list; `!glob` excludes; default every event): which events to publish.
 * - `content_format` (`json` default, or `cuf_xml`): the entry's content; `cuf_xml` also appends
 *   `.cuf` to the event type used as category and default title.
 * - `extra_info` (mapping): values for the CUF template that events lack, notably `data_center` and
 *   `region`; they win over same-named traits, as in the reference.
 * - `title` (string, default the event type): the entry's title.
 * - `categories` (list of strings): categories added before the event type (and
 *   `original_message_id:<id>` when the event has that trait).
 * - `auth_server`, `auth_user`, `auth_key` (strings): when `auth_server` is set, a token is obtained
 *   by POSTing `{"auth": {"RAX-KSKEY:apiKeyCredentials": {"username", "apiKey"}}}` and sent as
 *   `X-Auth-Token`; it is renewed before the expiry the server announces and whenever the feed answers
 *   401 (then the entry is re-sent at once). Without `auth_server` no token is sent.
 * - `auth_tenant` (string, ours): adds `"tenantName"` to the auth request, for servers scoping tokens.
 * - `http_timeout` (number, seconds, default 120): per request.
 * - `wait_interval` (seconds, default 30) and `max_wait` (seconds, default 600): backoff before the first
 *   retry, doubling (half of it random) up to `max_wait`.
 * - `retries` (whole number, default 5, ours): retries per entry after timeouts, connection errors, 408,
 *   429 and 5xx. The reference retried forever.
 *
 * Answers: 2xx delivered; 409 means the feed already has the entry (a redelivered batch) and counts as
 * delivered; 400 and other 4xx are not retried. commit() throws when an entry failed, after trying the
 * others; once one entry exhausts its retries the feed is taken to be down and the rest are not tried.
 */
export class AtomPubHandler implements Handler {
  private readonly url: string;
  private readonly select: EventTypeMatcher;
  private readonly format: 'json' | 'cuf_xml';
  private readonly extraInfo: Readonly<Record<string, string>>;
  private readonly title: string | undefined;
  private readonly categories: readonly string[];
  private readonly auth:
    | { readonly server: string; readonly user: string; readonly key: string; readonly tenant?: string }
    | undefined;
  private readonly timeoutMs: number;
  private readonly policy: BackoffPolicy;
  private readonly tokenSlot: { token: CachedToken | undefined };
  private readonly log: Logger;
  private readonly fetch: typeof fetch;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private pending: { readonly batchId: string; readonly entries: readonly Entry[] } | undefined;

  constructor(params: Readonly<Record<string, unknown>>, context: HandlerContext) {
    const p = new ParamReader('atompub', params);
    this.url = p.url('url');
    this.select = p.eventTypes('event_types') ?? { test: () => true, isCatchAll: true };
    this.format = p.oneOf('content_format', ['json', 'cuf_xml'] as const, 'json');
    this.extraInfo = p.stringMap('extra_info') ?? {};
    this.title = p.string('title');
    this.categories = p.stringList('categories') ?? [];
    const server = nonEmpty(p.string('auth_server'));
    const user = nonEmpty(p.string('auth_user'));
    const key = nonEmpty(p.string('auth_key'));
    const tenant = nonEmpty(p.string('auth_tenant'));
    if (server !== undefined) {
      if (user === undefined || key === undefined)
        throw new HandlerParamsError(
          "atompub: params 'auth_user' and 'auth_key' are required with 'auth_server'",
        );
      p.url('auth_server');
      this.auth = tenant === undefined ? { server, user, key } : { server, user, key, tenant };
    } else {
      if (user !== undefined || key !== undefined || tenant !== undefined)
        throw new HandlerParamsError("atompub: 'auth_user', 'auth_key' and 'auth_tenant' need 'auth_server'");
      this.auth = undefined;
    }
    this.timeoutMs = p.number('http_timeout', 120, { positive: true }) * 1000;
    const initialDelayMs = p.number('wait_interval', 30, { min: 0 }) * 1000;
    const maxDelayMs = p.number('max_wait', 600, { min: 0 }) * 1000;
    if (maxDelayMs < initialDelayMs)
      throw new HandlerParamsError("atompub: param 'max_wait' must not be less than 'wait_interval'");
    this.policy = { retries: p.number('retries', 5, { min: 0, integer: true }), initialDelayMs, maxDelayMs };
    let slot = tokens.get(params);
    if (slot === undefined) {
      slot = { token: undefined };
      tokens.set(params, slot);
    }
    this.tokenSlot = slot;
    this.log = context.log;
    this.fetch = context.fetch ?? fetch;
    this.now = context.now ?? Date.now;
    this.sleep = context.sleep ?? realSleep;
    const unknown = p.unknown(KNOWN_PARAMS);
    if (unknown.length > 0)
      warnOncePerStep(this.log, params, 'unknown', 'atompub: ignoring unknown params', { params: unknown });
  }

  /**
   * Renders the entries of the selected events now; an event that cannot be rendered (e.g. a
   * non-numeric `rax_options`) is remembered as failed so that commit() reports it without holding
   * back the others (the reference logged and skipped it).
   */
  handleEvents(events: Event[], env: HandlerEnv): Event[] {
    const entries: Entry[] = [];
    for (const event of events) {
      if (!this.select.test(event.event_type)) continue;
      try {
        entries.push({
          messageId: event.message_id,
          eventType: event.event_type,
          atom: this.entryFor(event),
          error: undefined,
        });
      } catch (err) {
        entries.push({
          messageId: event.message_id,
          eventType: event.event_type,
          atom: undefined,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    this.pending = entries.length === 0 ? undefined : { batchId: env.batch_id, entries };
    return events;
  }

  /** The Atom entry of one event, in the configured content format. */
  entryFor(event: Event): string {
    if (this.format === 'cuf_xml') {
      const content = cufXml(event, this.extraInfo, (msg, fields) => this.log('error', msg, fields));
      return atomEntry(
        event,
        `${event.event_type}.cuf`,
        content,
        'application/xml',
        this.title,
        this.categories,
      );
    }
    return atomEntry(
      event,
      event.event_type,
      escapeText(eventToJson(event)),
      'application/json',
      this.title,
      this.categories,
    );
  }

  /** Sends every entry; throws a summary when any was not delivered. */
  async commit(): Promise<void> {
    const pending = this.pending;
    if (pending === undefined) return;
    const failures: string[] = [];
    let delivered = 0;
    // Set when the remaining entries would fail the same way (feed down, or no token to be had).
    let stop: { readonly reason: string; readonly retriable: boolean } | undefined;
    for (const entry of pending.entries) {
      if (entry.atom === undefined) {
        failures.push(`${entry.messageId} (${entry.eventType}): cannot render: ${entry.error}`);
        continue;
      }
      if (stop !== undefined) {
        failures.push(`${entry.messageId} (${entry.eventType}): not tried, ${stop.reason}`);
        continue;
      }
      try {
        await this.send(entry, pending.batchId);
        delivered++;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        failures.push(`${entry.messageId} (${entry.eventType}): ${message}`);
        if (err instanceof AuthError) stop = { reason: 'no token', retriable: err.retriable };
        else if (err instanceof DeliveryError && err.retriable)
          stop = { reason: 'the feed is unavailable', retriable: true };
      }
    }
    this.pending = undefined;
    this.log('debug', 'atompub entries sent', {
      handler: 'atompub',
      batch_id: pending.batchId,
      delivered,
      failed: failures.length,
    });
    if (failures.length > 0) {
      // The first few reasons say what went wrong; hundreds of "not tried" would only bury them.
      const shown = failures.slice(0, MAX_REPORTED_FAILURES).join('; ');
      const more =
        failures.length > MAX_REPORTED_FAILURES
          ? `; and ${failures.length - MAX_REPORTED_FAILURES} more`
          : '';
      throw new DeliveryError(
        `atompub: ${failures.length} of ${pending.entries.length} entries not delivered to ${this.url}: ${shown}${more}`,
        { retriable: stop?.retriable ?? false },
      );
    }
  }

  rollback(): void {
    this.pending = undefined;
  }

  private async send(entry: Entry, batchId: string): Promise<number> {
    const what = `atompub POST ${this.url}`;
    return withRetries(
      async () => {
        let token = this.auth === undefined ? undefined : await this.token(false);
        for (let refreshed = false; ; refreshed = true) {
          const headers: Record<string, string> = { 'Content-Type': 'application/atom+xml' };
          if (token !== undefined) headers['X-Auth-Token'] = token;
          const answer = await httpRequest(this.fetch, {
            method: 'POST',
            url: this.url,
            headers,
            body: entry.atom as string,
            timeoutMs: this.timeoutMs,
            bodyLimit: 2048,
          });
          const s = answer.status;
          if (s >= 200 && s < 300) return s;
          if (s === 409) {
            this.log('debug', 'atompub: the feed already has this entry', {
              handler: 'atompub',
              batch_id: batchId,
              message_id: entry.messageId,
            });
            return s;
          }
          if (s === 401 && this.auth !== undefined && !refreshed) {
            this.log('info', 'atompub: token refused, renewing it', {
              handler: 'atompub',
              batch_id: batchId,
            });
            token = await this.token(true);
            continue;
          }
          const why =
            s === 400
              ? 'rejected the content'
              : s === 401
                ? this.auth === undefined
                  ? 'requires authentication (set auth_server, auth_user, auth_key)'
                  : 'refused a freshly issued token'
                : `answered ${s}`;
          throw new DeliveryError(
            `${what}: ${why} (${s}): ${excerpt(answer.body)}`,
            answerErrorOptions(answer),
          );
        }
      },
      {
        what,
        policy: this.policy,
        sleep: this.sleep,
        log: this.log,
        fields: { handler: 'atompub', batch_id: batchId, message_id: entry.messageId },
      },
    );
  }

  /** The cached token, or a new one when forced, absent or about to expire. */
  private async token(force: boolean): Promise<string> {
    const auth = this.auth!;
    const cached = this.tokenSlot.token;
    if (!force && cached !== undefined && (cached.renewAtMs === undefined || this.now() < cached.renewAtMs))
      return cached.id;
    const credentials: Record<string, unknown> = {
      'RAX-KSKEY:apiKeyCredentials': { username: auth.user, apiKey: auth.key },
    };
    if (auth.tenant !== undefined) credentials.tenantName = auth.tenant;
    const answer = await httpRequest(this.fetch, {
      method: 'POST',
      url: auth.server,
      headers: { 'User-Agent': 'Winchester', Accept: 'application/json', 'Content-Type': 'application/json' },
      body: JSON.stringify({ auth: credentials }),
      timeoutMs: this.timeoutMs,
      bodyLimit: 1 << 20,
    });
    const s = answer.status;
    if (s < 200 || s >= 300) {
      throw new AuthError(
        `atompub: auth server ${auth.server} answered ${s}: ${excerpt(answer.body)}`,
        answerErrorOptions(answer),
      );
    }
    const token = readToken(answer.body, answer.headers);
    if (token === undefined) {
      throw new AuthError(
        `atompub: auth server ${auth.server} answered ${s} without a token (access.token.id): ${excerpt(answer.body)}`,
        { status: s },
      );
    }
    const renewAtMs = token.expiresMs === undefined ? undefined : token.expiresMs - TOKEN_EXPIRY_MARGIN_MS;
    this.tokenSlot.token = { id: token.id, renewAtMs };
    return token.id;
  }
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

/** The token of a keystone v2 answer (`access.token.id`, `expires`), or of a v3 `X-Subject-Token`. */
function readToken(
  body: string,
  headers: Headers,
): { id: string; expiresMs: number | undefined } | undefined {
  let token: { id?: unknown; expires?: unknown } | undefined;
  try {
    const doc = JSON.parse(body) as { access?: { token?: { id?: unknown; expires?: unknown } } };
    token = doc?.access?.token;
  } catch {
    token = undefined;
  }
  const id =
    typeof token?.id === 'string' && token.id !== ''
      ? token.id
      : (headers.get('x-subject-token') ?? undefined);
  if (id === undefined || id === '') return undefined;
  let expiresMs: number | undefined;
  if (typeof token?.expires === 'string') {
    try {
      expiresMs = Math.floor(parseDatetime(token.expires) / 1000);
    } catch {
      expiresMs = undefined;
    }
  }
  return { id, expiresMs };
}

/** Escapes text for an XML attribute value or text node. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;',
  );
}

/** Escapes a text node (quotes may stay, so JSON content remains readable). */
function escapeText(s: string): string {
  return s.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

/**
 * The Atom entry around `content`: id `urn:uuid:<message_id>`, the configured categories, then the event
 * type, then `original_message_id:<id>` when the event carries one; title as configured or the event
 * type. Same shape as the reference's, except that values are XML-escaped (the reference pasted them in
 * raw, so a `&` in a name made the entry invalid XML).
 */
export function atomEntry(
  event: Event,
  eventType: string,
  content: string,
  contentType: string,
  title: string | undefined,
  categories: readonly string[],
): string {
  const cats = [...categories, eventType];
  const original = event.traits.original_message_id;
  if (original !== undefined && Object.hasOwn(event.traits, 'original_message_id'))
    cats.push(`original_message_id:${pyStr(original)}`);
  let cattags = '';
  for (const c of cats) cattags += `<atom:category term="${escapeXml(c)}" />`;
  return (
    '<atom:entry xmlns:atom="http://www.w3.org/2005/Atom">' +
    `<atom:id>urn:uuid:${escapeXml(event.message_id)}</atom:id>` +
    cattags +
    `<atom:title type="text">${escapeXml(title ?? eventType)}</atom:title>` +
    `<atom:content type="${escapeXml(contentType)}">${content}</atom:content></atom:entry>`
  );
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** A trait as Python's `%s` would print the reference's value (datetimes as `str(datetime)`). */
function pyStr(t: TraitValue): string {
  switch (t.type) {
    case 'text':
      return t.value;
    case 'int':
      return String(t.value);
    case 'float':
      return formatFloat(t.value);
    case 'datetime': {
      const f = toFields(t.value);
      const base = `${pad(f.year, 4)}-${pad(f.month)}-${pad(f.day)} ${pad(f.hour)}:${pad(f.minute)}:${pad(f.second)}`;
      return f.microsecond === 0 ? base : `${base}.${pad(f.microsecond, 6)}`;
    }
  }
}

/** CUF time format: seconds precision, `Z`. */
function cufTime(t: Instant | undefined): string {
  if (t === undefined) return '';
  const f = toFields(t);
  return `${pad(f.year, 4)}-${pad(f.month)}-${pad(f.day)}T${pad(f.hour)}:${pad(f.minute)}:${pad(f.second)}Z`;
}

function datetimeTrait(event: Event, name: string): Instant | undefined {
  const t = Object.hasOwn(event.traits, name) ? event.traits[name] : undefined;
  return t?.type === 'datetime' ? t.value : undefined;
}

function textTrait(event: Event, name: string): string | undefined {
  const t = Object.hasOwn(event.traits, name) ? event.traits[name] : undefined;
  return t === undefined ? undefined : pyStr(t);
}

// Python 2 ordered None below every datetime; the reference's max/min/">" relied on it.
const later = (a: Instant | undefined, b: Instant | undefined) =>
  a === undefined ? false : b === undefined ? true : a > b;

/**
 * The usage period: from the later of launch and audit-period start, to the earlier of
 * termination (or deletion) and audit-period end; a period that would end before it starts starts at the
 * audit-period start instead. Absent values behave as the reference's `None` did.
 */
export function usageTimes(event: Event): { start: Instant | undefined; end: Instant | undefined } {
  const apb = datetimeTrait(event, 'audit_period_beginning');
  const ape = datetimeTrait(event, 'audit_period_ending');
  const launched = datetimeTrait(event, 'launched_at');
  const terminated = datetimeTrait(event, 'terminated_at') ?? datetimeTrait(event, 'deleted_at');
  let start = later(launched, apb) ? launched : apb;
  const end = terminated === undefined ? ape : later(terminated, ape) ? ape : terminated;
  if (later(start, end)) start = apb;
  return { start, end };
}

/** `osLicenseType` (and `applicationLicense`) from the bit flags of `rax_options`. */
export function licenseAttributes(event: Event): string {
  const raw = Object.hasOwn(event.traits, 'rax_options') ? event.traits.rax_options : undefined;
  let opt = 0;
  if (raw !== undefined) {
    if (raw.type === 'int') opt = raw.value;
    else if (raw.type === 'float') opt = Math.trunc(raw.value);
    else if (raw.type === 'text' && /^\s*[+-]?\d+\s*$/.test(raw.value)) opt = Number.parseInt(raw.value, 10);
    else throw new Error(`rax_options must be an integer, not '${pyStr(raw)}'`);
  }
  // BigInt keeps Python's two's-complement reading of negative values and of values beyond 32 bits.
  const bits = BigInt(opt);
  const bit = (i: number) => ((bits >> BigInt(i)) & 1n) === 1n;
  let os = 'LINUX';
  if (bit(0)) os = 'RHEL';
  if (bit(2)) os = 'WINDOWS';
  if (bit(6)) os = 'VYATTA';
  let app: string | undefined;
  if (bit(3)) app = 'MSSQL';
  if (bit(5)) app = 'MSSQL_WEB';
  return app === undefined ? `osLicenseType="${os}"` : `osLicenseType="${os}" applicationLicense="${app}"`;
}

const STATUS_BY_STATE: Readonly<Record<string, string>> = {
  building: 'BUILD',
  stopped: 'SHUTOFF',
  paused: 'PAUSED',
  suspended: 'SUSPENDED',
  rescued: 'RESCUE',
  error: 'ERROR',
  deleted: 'DELETED',
  'soft-delete': 'SOFT_DELETED',
  shelved: 'SHELVED',
  shelved_offloaded: 'SHELVED_OFFLOADED',
};

const ACTIVE_STATUS_BY_TASK: Readonly<Record<string, string>> = {
  rebooting: 'REBOOT',
  rebooting_hard: 'HARD_REBOOT',
  updating_password: 'PASSWORD',
  rebuilding: 'REBUILD',
  rebuild_block_device_mapping: 'REBUILD',
  rebuild_spawning: 'REBUILD',
  migrating: 'MIGRATING',
  resize_prep: 'RESIZE',
  resize_migrating: 'RESIZE',
  resize_migrated: 'RESIZE',
  resize_finish: 'RESIZE',
};

/** The CUF server status from `state` and `state_description`; `UNKNOWN` when no rule applies. */
export function cufStatus(event: Event): string {
  const state = textTrait(event, 'state');
  const task = textTrait(event, 'state_description');
  if (state === 'active')
    return (
      (task !== undefined && Object.hasOwn(ACTIVE_STATUS_BY_TASK, task)
        ? ACTIVE_STATUS_BY_TASK[task]
        : undefined) ?? 'ACTIVE'
    );
  if (state === 'resized') return task === 'resize_reverting' ? 'REVERT_RESIZE' : 'VERIFY_RESIZE';
  if (state !== undefined && Object.hasOwn(STATUS_BY_STATE, state)) return STATUS_BY_STATE[state] as string;
  return 'UNKNOWN';
}

/**
 * The CUF usage record of an event (Rackspace Cloud Servers usage format), filled from its traits with
 * `extra` winning over them; absent values are empty strings, as in the reference.
 */
export function cufXml(
  event: Event,
  extra: Readonly<Record<string, string>>,
  logError: (msg: string, fields: Record<string, unknown>) => void = () => {},
): string {
  const v = (name: string): string => {
    if (Object.hasOwn(extra, name)) return escapeXml(extra[name] as string);
    if (name === 'message_id') return escapeXml(event.message_id);
    return escapeXml(textTrait(event, name) ?? '');
  };
  const { start, end } = usageTimes(event);
  const status = cufStatus(event);
  if (status === 'UNKNOWN') {
    logError('atompub: unknown CUF status', {
      handler: 'atompub',
      message_id: event.message_id,
      state: textTrait(event, 'state'),
      state_description: textTrait(event, 'state_description'),
    });
  }
  return (
    '<event xmlns="http://docs.rackspace.com/core/event" xmlns:nova="http://docs.rackspace.com/event/nova" ' +
    `version="1" id="${v('message_id')}" resourceId="${v('instance_id')}" resourceName="${v('display_name')}" ` +
    `dataCenter="${v('data_center')}" region="${v('region')}" tenantId="${v('tenant_id')}" ` +
    `startTime="${cufTime(start)}" endTime="${cufTime(end)}" type="USAGE">` +
    '<nova:product version="1" serviceCode="CloudServersOpenStack" resourceType="SERVER" ' +
    `flavorId="${v('instance_flavor_id')}" flavorName="${v('instance_flavor')}" status="${status}" ` +
    `${licenseAttributes(event)} bandwidthIn="${v('bandwidth_in')}" bandwidthOut="${v('bandwidth_out')}"/></event>`
  );
}
