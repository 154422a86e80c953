/**
 * A real HTTP server on 127.0.0.1 (port 0) for the atompub and webhook tests: every request is recorded
 * (method, path, headers, raw body) and answered by the test's `respond` function, so status codes,
 * delays and dropped connections are exercised through the real fetch and socket code.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HandlerContext } from '../../../src/pipeline/handler.js';

/** One request as the server saw it. */
export interface Recorded {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** How to answer: a status (and body, headers), optionally after a delay; or drop the connection. */
export type Reply =
  | {
      readonly status: number;
      readonly body?: string;
      readonly headers?: Record<string, string>;
      readonly delayMs?: number;
    }
  | 'destroy';

export interface TestServer {
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  readonly requests: Recorded[];
  /** Requests whose path is `path`. */
  on(path: string): Recorded[];
}

/** Starts a server answering with `respond(request, indexOfRequestOnThisPath)`; closed when the test ends. */
export async function startServer(
  t: { after(fn: () => unknown): void },
  respond: (req: Recorded, n: number) => Reply,
): Promise<TestServer> {
  const requests: Recorded[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const chunks: Uint8Array[] = [];
    req.on('data', (c: Uint8Array) => chunks.push(c));
    req.on('end', () => {
      const rec: Recorded = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      const n = requests.filter((r) => r.path === rec.path).length;
      requests.push(rec);
      const reply = respond(rec, n);
      if (reply === 'destroy') {
        req.socket.destroy();
        return;
      }
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(reply.status, reply.headers ?? {});
        res.end(reply.body ?? '');
      };
      if (reply.delayMs === undefined) send();
      else {
        const timer = setTimeout(() => {
          timers.delete(timer);
          send();
        }, reply.delayMs);
        timers.add(timer);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const timer of timers) clearTimeout(timer);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    on: (path) => requests.filter((r) => r.path === path),
  };
}

/** A log line a handler wrote. */
export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly fields: Record<string, unknown> | undefined;
}

/**
 * A handler context whose sleep returns at once but records the delays asked for, whose clock is a
 * settable number, and whose log is kept in memory.
 */
export function testContext(overrides: Partial<HandlerContext> = {}): {
  context: HandlerContext;
  sleeps: number[];
  logs: LogLine[];
  clock: { ms: number };
} {
  const sleeps: number[] = [];
  const logs: LogLine[] = [];
  const clock = { ms: Date.UTC(2026, 0, 1) };
  const context: HandlerContext = {
    log: (level, msg, fields) => logs.push({ level, msg, fields }),
    now: () => clock.ms,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...overrides,
  };
  return { context, sleeps, logs, clock };
}
