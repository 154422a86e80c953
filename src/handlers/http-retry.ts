/**
 * The retry helper of the HTTP handlers (`atompub`, `webhook`): one request with a timeout, failures
 * classified once into "retrying can help" or not, and a bounded loop of attempts separated by
 * exponential backoff with jitter. Clock, sleep and fetch are injected (HandlerContext), so tests run the
 * whole policy against a real server without waiting for real delays.
 */
import { WinchesterError } from '../errors.js';
import type { Logger } from '../log.js';

/** How often and how patiently to retry. */
export interface BackoffPolicy {
  /** Attempts after the first one (0: try once). */
  readonly retries: number;
  /** Base delay before the first retry, in milliseconds; it doubles for each further retry. */
  readonly initialDelayMs: number;
  /** Ceiling of the base delay, in milliseconds (a server's Retry-After is capped by it too). */
  readonly maxDelayMs: number;
}

/**
 * The wait before retry number `retry` (1 for the first retry): the base delay
 * `min(maxDelayMs, initialDelayMs·2^(retry−1))`, of which the upper half is random ("equal jitter"), so
 * many workers retrying the same outage spread out while each still waits at least half the base.
 */
export function backoffDelayMs(
  retry: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.round(base / 2 + (random() * base) / 2);
}

/**
 * A delivery failed. `retriable` says whether trying again may help (timeouts, connection errors, 5xx,
 * 408, 429); `status` is the HTTP status when the server answered.
 */
export class DeliveryError extends WinchesterError {
  readonly status: number | undefined;
  /** The server's Retry-After, in milliseconds, when it sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    options: { cause?: unknown; retriable?: boolean; status?: number; retryAfterMs?: number } = {},
  ) {
    super(message, options);
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * The options of a {@link DeliveryError} for a server's non-2xx answer: its status, whether another try
 * may help (408, 429 and 5xx; any other 4xx will not change by retrying), and its Retry-After.
 */
export function answerErrorOptions(answer: HttpAnswer): {
  status: number;
  retriable: boolean;
  retryAfterMs: number | undefined;
} {
  const s = answer.status;
  return {
    status: s,
    retriable: s === 408 || s === 429 || s >= 500,
    retryAfterMs: retryAfterMs(answer.headers),
  };
}

/** What {@link httpRequest} hands back when the server answered (whatever the status). */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  /** The body as text: complete, or its first bytes only when `bodyLimit` was given. */
  readonly body: string;
}

/** One HTTP request. */
export interface HttpRequest {
  readonly method: 'POST';
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Abort (and count as a retriable timeout) after this many milliseconds, body included. */
  readonly timeoutMs: number;
  /** Read at most this many bytes of the response body (enough for an error excerpt). Default: all. */
  readonly bodyLimit?: number;
}

/**
 * Sends one request. Resolves with the answer whatever its status (the caller decides what a status
 * means); rejects with a retriable {@link DeliveryError} when no answer came: connection refused or
 * reset, DNS failure, or the timeout. Redirects are not followed: fetch would turn a redirected POST into
 * a GET and silently drop the body.
 */
export async function httpRequest(fetchFn: typeof fetch, req: HttpRequest): Promise<HttpAnswer> {
  const what = `${req.method} ${req.url}`;
  try {
    const res = await fetchFn(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(req.timeoutMs),
    });
    const body = await readBody(res, req.bodyLimit);
    return { status: res.status, headers: res.headers, body };
  } catch (err) {
    if (isTimeout(err)) {
      throw new DeliveryError(`${what}: no answer within ${req.timeoutMs / 1000} s`, {
        cause: err,
        retriable: true,
      });
    }
    throw new DeliveryError(`${what}: ${networkReason(err)}`, { cause: err, retriable: true });
  }
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}

/** The most specific reason undici gives (`ECONNREFUSED`, `UND_ERR_SOCKET`, …) rather than "fetch failed". */
function networkReason(err: unknown): string {
  const cause =
    err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (cause !== undefined && typeof cause === 'object') {
    const code = typeof cause.code === 'string' ? cause.code : undefined;
    const message = typeof cause.message === 'string' ? cause.message : undefined;
    if (code !== undefined || message !== undefined)
      return `connection failed (${[code, message].filter(Boolean).join(': ')})`;
  }
  return `connection failed (${err instanceof Error ? err.message : String(err)})`;
}

async function readBody(res: Response, limit: number | undefined): Promise<string> {
  if (limit === undefined) return res.text();
  if (res.body === null) return '';
  // Only an excerpt is wanted: stop reading (and free the connection) once enough has arrived rather
  // than buffering whatever size of error page the server sends.
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

/** A response body shortened for an error message: whitespace runs collapsed, at most `max` characters. */
export function excerpt(body: string, max = 300): string {
  const flat = body.replace(/\s+/g, ' ').trim();
  if (flat === '') return '(empty body)';
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** Reads a Retry-After header given in seconds (the HTTP-date form is ignored: backoff applies). */
export function retryAfterMs(headers: Headers): number | undefined {
  const v = headers.get('retry-after');
  if (v === null || !/^\s*\d+\s*$/.test(v)) return undefined;
  return Number(v) * 1000;
}

/** What {@link withRetries} needs besides the operation. */
export interface RetryOptions {
  /** Names the operation in the final error and in logs, e.g. `webhook POST https://…`. */
  readonly what: string;
  readonly policy: BackoffPolicy;
  readonly sleep: (ms: number) => Promise<void>;
  readonly log: Logger;
  /** Fields added to every log line (batch id, handler…). */
  readonly fields?: Record<string, unknown>;
  /** Source of jitter, in [0, 1). Default Math.random. */
  readonly random?: () => number;
}

/**
 * Runs `op` until it resolves, throws an error that is not retriable (`retriable !== true`, rethrown
 * as is), or has failed `policy.retries + 1` times (then a retriable {@link DeliveryError} carrying the
 * last error as cause: the whole batch may still succeed when retried later). `op` receives the
 * 1-based attempt number. A server's Retry-After lengthens a wait, never beyond `maxDelayMs`.
 */
export async function withRetries<T>(op: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { policy, log } = options;
  const attempts = policy.retries + 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op(attempt);
    } catch (err) {
      const retriable = err instanceof WinchesterError && err.retriable;
      if (!retriable) throw err;
      const message = err instanceof Error ? err.message : String(err);
      if (attempt >= attempts) {
        throw new DeliveryError(
          `${options.what}: gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}; last: ${message}`,
          { cause: err, retriable: true, status: err instanceof DeliveryError ? err.status : undefined },
        );
      }
      let delay = backoffDelayMs(attempt, policy, options.random);
      const asked = err instanceof DeliveryError ? err.retryAfterMs : undefined;
      if (asked !== undefined) delay = Math.max(delay, Math.min(asked, policy.maxDelayMs));
      log('warn', 'delivery failed, retrying', {
        ...options.fields,
        what: options.what,
        attempt,
        of: attempts,
        retry_in_ms: delay,
        error: message,
      });
      await options.sleep(delay);
    }
  }
}

/** The real sleep, used when the context injects none. */
export const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
