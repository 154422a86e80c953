/**
 * The operations endpoint of a worker (DESIGN.md §Observability): Prometheus metrics, liveness and
 * readiness over plain node:http, on its own port so it is never behind the worker's own load.
 *
 * - `GET /metrics`: the registry in the Prometheus text format.
 * - `GET /healthz`: 200 `ok` while the process serves requests (liveness: the event loop turns).
 * - `GET /readyz`: 200 with the JSON of the checks when ready; 503 with the failing checks otherwise,
 *   also when the check throws or does not answer within the timeout.
 *
 * HEAD is answered like GET without a body; other methods get 405, other paths 404. Nothing a client
 * sends can crash the worker: handler failures become a 500 and are logged.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WinchesterError } from '../errors.js';
import type { Logger } from '../log.js';

/** What a readiness check reports: overall readiness and the individual checks (true/ok, or why not). */
export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: Record<string, boolean | string>;
}

/** The part of a prom-client Registry the server uses. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** Options of {@link startOpsServer}. */
export interface OpsServerOptions {
  /** Address to listen on (`metrics.host`). */
  readonly host: string;
  /**
   * Port to listen on. 0 means an ephemeral port chosen by the system (tests); the configuration's
   * `metrics.port: 0` ("disabled") is handled by the caller, which then does not start the server.
   */
  readonly port: number;
  readonly registry: MetricsSource;
  /** The readiness check behind `/readyz`. */
  readonly ready: () => Promise<ReadinessReport>;
  readonly log: Logger;
  /**
   * Runs before every `/metrics` answer (e.g. a consumer lag refresh that throttles itself); bounded by
   * `timeoutMs`; its failure is logged and the metrics are served anyway.
   */
  readonly beforeMetrics?: () => Promise<void>;
  /** Milliseconds `ready()` (and `beforeMetrics`) may take. Default 2000. */
  readonly timeoutMs?: number;
}

/** A running ops server. */
export interface OpsServer {
  /** The port actually listened on (the chosen one when 0 was asked). */
  readonly port: number;
  /** Stops listening and closes open connections. Idempotent. */
  close(): Promise<void>;
}

/** Why the ops server could not listen. */
export class OpsServerListenError extends WinchesterError {}

const HINTS: Record<string, string> = {
  EADDRINUSE:
    'another process already listens there; set metrics.port to a free port (or 0 to disable the endpoint)',
  EACCES: 'ports below 1024 need privileges; use a higher metrics.port',
  EADDRNOTAVAIL: 'metrics.host is not an address of this machine; use 0.0.0.0 or one of its addresses',
  ENOTFOUND: 'metrics.host does not resolve; use 0.0.0.0 or an address of this machine',
};

/**
 * Starts the ops server.
 * @throws OpsServerListenError naming host:port, the system's reason and a hint when it cannot listen.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { host, port, log } = options;
  const timeoutMs = options.timeoutMs ?? 2000;
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log('error', 'ops endpoint failed', { path: req.url, error: messageOf(error) });
      if (!res.headersSent) send(res, req, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  // A malformed request must not reach the default handler's noise; answer 400 and drop the socket.
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, req, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    const path = (req.url ?? '/').split('?', 1)[0];
    switch (path) {
      case '/metrics': {
        if (options.beforeMetrics !== undefined) {
          await withTimeout(call(options.beforeMetrics), timeoutMs, 'refreshing metrics').catch(
            (error: unknown) =>
              log('warn', 'refresh before a scrape failed; serving the last values', {
                error: messageOf(error),
              }),
          );
        }
        const body = await options.registry.metrics();
        send(res, req, 200, options.registry.contentType, body);
        return;
      }
      case '/healthz':
        send(res, req, 200, 'text/plain; charset=utf-8', 'ok\n');
        return;
      case '/readyz': {
        let report: ReadinessReport;
        try {
          report = await withTimeout(call(options.ready), timeoutMs, 'the readiness check');
        } catch (error) {
          sendJson(res, req, 503, { ready: false, error: messageOf(error) });
          return;
        }
        if (report.ready) {
          sendJson(res, req, 200, { ready: true, checks: report.checks });
        } else {
          const failing: Record<string, boolean | string> = {};
          for (const [name, value] of Object.entries(report.checks))
            if (value !== true) failing[name] = value;
          sendJson(res, req, 503, { ready: false, failing, checks: report.checks });
        }
        return;
      }
      default:
        send(res, req, 404, 'text/plain; charset=utf-8', 'not found: try /metrics, /healthz or /readyz\n');
    }
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const code = error.code ?? 'error';
      const hint = HINTS[code];
      reject(
        new OpsServerListenError(
          `cannot listen on ${host}:${port} for /metrics, /healthz and /readyz: ${code}` +
            (hint === undefined ? ` (${error.message})` : `: ${hint}`),
          { cause: error },
        ),
      );
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // Errors after listening (rare: e.g. EMFILE on accept) are logged, never thrown into the worker.
  server.on('error', (error) => log('error', 'ops server error', { error: messageOf(error) }));
  const actual = (server.address() as AddressInfo).port;
  log('info', 'ops endpoint listening', { host, port: actual, paths: ['/metrics', '/healthz', '/readyz'] });

  let closing: Promise<void> | undefined;
  return {
    port: actual,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function send(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  res.end(req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: ServerResponse, req: IncomingMessage, status: number, value: unknown): void {
  send(res, req, status, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`);
}

/** Calls `fn`, turning a synchronous throw into a rejection. */
function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `promise`, or a rejection once `ms` passed (the promise itself is left to settle on its own). */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  // A late rejection of the abandoned promise must not become an unhandled rejection.
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
