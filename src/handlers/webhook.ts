/**
 * The `webhook` handler: POSTs each batch as one JSON document to a URL, with a timeout, bounded
 * retries with backoff, an `Idempotency-Key` (the batch id, the same on every redelivery) and an
 * optional HMAC-SHA256 signature. Not in the reference; documented in docs/handlers.md.
 */
import { createHmac } from 'node:crypto';
import type { EventTypeMatcher } from '../glob.js';
import type { Logger } from '../log.js';
import type { Event } from '../model/event.js';
import { eventToJson, traitValueToJson } from '../model/event-json.js';
import type { Handler, HandlerContext, HandlerEnv } from '../pipeline/handler.js';
import { formatInstant } from '../timex/instant.js';
import type { DistinguishingValue, DistinguishingValues } from '../triggers/types.js';
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

/** The header carrying the body's signature when `secret` is set: `sha256=<lower-case hex>`. */
export const SIGNATURE_HEADER = 'X-Winchester-Signature';

/** Headers the handler sets itself; `headers` may not override them. */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'idempotency-key',
  SIGNATURE_HEADER.toLowerCase(),
]);

const KNOWN_PARAMS = new Set([
  'url',
  'timeout',
  'retries',
  'retry_delay',
  'max_retry_delay',
  'headers',
  'secret',
  'event_types',
]);

/**
 * POSTs the batch as JSON. Params (pipelines.yaml `params:`):
 *
 * - `url` (string, required): http or https URL to POST to. Redirects are not followed (a 3xx fails).
 * - `timeout` (number, seconds, default 10): per attempt, including reading the answer.
 * - `retries` (whole number, default 3): attempts after the first when the failure may pass
 *   (connection error, timeout, 408, 429, 5xx). Other 4xx and 3xx fail at once.
 * - `retry_delay` (number, seconds, default 1): base backoff before the first retry; it doubles each
 *   retry, with jitter (half of it random).
 * - `max_retry_delay` (number, seconds, default 60): ceiling of the backoff; also caps a server's
 *   `Retry-After`.
 * - `headers` (mapping of string to string): extra request headers (e.g. `Authorization`). They may not
 *   set Content-Type, Content-Length, Idempotency-Key or X-Winchester-Signature.
 * - `secret` (string): when set, `X-Winchester-Signature: sha256=<hex>` carries the HMAC-SHA256 of
 *   the exact body bytes keyed with this secret (UTF-8).
 * - `event_types` (glob or list of globs, `!` excludes): only these events go in `events`; a batch
 *   left with no event is not posted. Default: every event.
 *
 * The body (keys in this order):
 * `{"batch_id","stream_id","trigger","kind","pipeline","distinguishing":{trait: value},"events":[…]}`
 * where events are the flat event JSON of `winchester distill` (src/model/event-json.ts) and a
 * distinguishing time range is `{"begin": …, "end": …}`. Headers: `Content-Type: application/json`,
 * `Idempotency-Key: <batch_id>` (receivers dedupe redeliveries on it), the signature when configured.
 * A 2xx answer is success.
 */
export class WebhookHandler implements Handler {
  private readonly url: string;
  private readonly timeoutMs: number;
  private readonly policy: BackoffPolicy;
  private readonly headers: Readonly<Record<string, string>>;
  private readonly secret: string | undefined;
  private readonly select: EventTypeMatcher | undefined;
  private readonly log: Logger;
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private pending: { readonly batchId: string; readonly body: string; readonly count: number } | undefined;

  constructor(params: Readonly<Record<string, unknown>>, context: HandlerContext) {
    const p = new ParamReader('webhook', params);
    this.url = p.url('url');
    this.timeoutMs = p.number('timeout', 10, { positive: true }) * 1000;
    const retries = p.number('retries', 3, { min: 0, integer: true });
    const initialDelayMs = p.number('retry_delay', 1, { min: 0 }) * 1000;
    const maxDelayMs = p.number('max_retry_delay', 60, { min: 0 }) * 1000;
    if (maxDelayMs < initialDelayMs) {
      throw new HandlerParamsError(
        `webhook: param 'max_retry_delay' (${maxDelayMs / 1000}) must not be less than 'retry_delay' (${initialDelayMs / 1000})`,
      );
    }
    this.policy = { retries, initialDelayMs, maxDelayMs };
    const headers = p.stringMap('headers') ?? {};
    for (const name of Object.keys(headers)) {
      if (RESERVED_HEADERS.has(name.toLowerCase()))
        throw new HandlerParamsError(`webhook: param 'headers' may not set '${name}': the handler sets it`);
    }
    this.headers = headers;
    const secret = p.string('secret');
    if (secret === '') throw new HandlerParamsError("webhook: param 'secret' must not be empty");
    this.secret = secret;
    this.select = p.eventTypes('event_types');
    this.log = context.log;
    this.fetch = context.fetch ?? fetch;
    this.sleep = context.sleep ?? realSleep;
    const unknown = p.unknown(KNOWN_PARAMS);
    if (unknown.length > 0)
      warnOncePerStep(this.log, params, 'unknown', 'webhook: ignoring unknown params', { params: unknown });
  }

  /** Builds the body now (so a bad event fails the batch, not the commit) and passes the events on. */
  handleEvents(events: Event[], env: HandlerEnv): Event[] {
    const chosen = this.select === undefined ? events : events.filter((e) => this.select!.test(e.event_type));
    this.pending =
      chosen.length === 0
        ? undefined
        : { batchId: env.batch_id, body: batchBody(env, chosen), count: chosen.length };
    return events;
  }

  /** POSTs the body built by handleEvents; throws when it could not be delivered. */
  async commit(): Promise<void> {
    const pending = this.pending;
    if (pending === undefined) return;
    const headers: Record<string, string> = {
      ...this.headers,
      'Content-Type': 'application/json',
      'Idempotency-Key': pending.batchId,
    };
    if (this.secret !== undefined) headers[SIGNATURE_HEADER] = signature(this.secret, pending.body);
    const what = `webhook POST ${this.url}`;
    const status = await withRetries(
      async () => {
        const answer = await httpRequest(this.fetch, {
          method: 'POST',
          url: this.url,
          headers,
          body: pending.body,
          timeoutMs: this.timeoutMs,
          bodyLimit: 2048,
        });
        const s = answer.status;
        if (s >= 200 && s < 300) return s;
        const redirect =
          s >= 300 && s < 400 ? ` (redirect to ${answer.headers.get('location') ?? '?'} not followed)` : '';
        throw new DeliveryError(
          `${what}: answered ${s}${redirect}: ${excerpt(answer.body)}`,
          answerErrorOptions(answer),
        );
      },
      {
        what,
        policy: this.policy,
        sleep: this.sleep,
        log: this.log,
        fields: { handler: 'webhook', batch_id: pending.batchId },
      },
    );
    this.log('debug', 'webhook delivered', {
      handler: 'webhook',
      batch_id: pending.batchId,
      status,
      events: pending.count,
    });
    this.pending = undefined;
  }

  rollback(): void {
    this.pending = undefined;
  }
}

/** `sha256=<hex>` of the HMAC-SHA256 of `body` (UTF-8) under `secret`: what a receiver recomputes. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

function distinguishingValueToJson(v: DistinguishingValue): string {
  if (v.type === 'range') return `{"begin":"${formatInstant(v.begin)}","end":"${formatInstant(v.end)}"}`;
  return traitValueToJson(v);
}

/** The webhook body; events are spliced in as text so that floats keep their `.0`. */
export function batchBody(env: HandlerEnv, events: readonly Event[]): string {
  const dist: DistinguishingValues = env.distinguishing ?? {};
  const parts: string[] = [];
  for (const name of Object.keys(dist)) {
    parts.push(`${JSON.stringify(name)}:${distinguishingValueToJson(dist[name] as DistinguishingValue)}`);
  }
  let out =
    `{"batch_id":${JSON.stringify(env.batch_id)},"stream_id":${JSON.stringify(env.stream_id)},` +
    `"trigger":${JSON.stringify(env.trigger)},"kind":${JSON.stringify(env.kind)},` +
    `"pipeline":${JSON.stringify(env.pipeline)},"distinguishing":{${parts.join(',')}},"events":[`;
  for (let i = 0; i < events.length; i++) {
    if (i > 0) out += ',';
    out += eventToJson(events[i] as Event);
  }
  return `${out}]}`;
}
