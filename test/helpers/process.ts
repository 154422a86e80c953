/**
 * Worker processes for tests: `winchester …` run from the sources in a child process whose JSON log lines
 * are collected, so a test can wait for a line, send SIGTERM, or SIGKILL it mid-work.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { TestScope } from './integration.js';

const ENTRY = fileURLToPath(new URL('./winchester-entry.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A running `winchester` child process. */
export class WinchesterProcess {
  /** Parsed JSON log lines of stdout, in order (other lines are kept as `{raw}`). */
  readonly lines: Record<string, unknown>[] = [];
  stderr = '';
  private readonly exited: Promise<number | null>;
  private waiters: (() => void)[] = [];
  private buffered = '';

  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.take(chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = once(child, 'exit').then(([code, signal]) => (signal === null ? (code as number) : null));
  }

  private take(chunk: string): void {
    this.buffered += chunk;
    let nl = this.buffered.indexOf('\n');
    while (nl >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      try {
        this.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        this.lines.push({ raw: line });
      }
      nl = this.buffered.indexOf('\n');
    }
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves with the first log line (already seen or to come) `match` accepts; rejects after `timeoutMs`. */
  async waitForLine(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs = 30_000,
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(match);
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0 || this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(
          `no matching log line within ${timeoutMs} ms (exit ${this.child.exitCode ?? this.child.signalCode}); ` +
            `${this.lines.length} log lines, the last: ${JSON.stringify(this.lines.slice(-5))}; args ${JSON.stringify(this.child.spawnargs.slice(-3))}; stderr: ${this.stderr.slice(-2000)}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for the log line whose msg is `msg`. */
  waitForMsg(msg: string, timeoutMs?: number): Promise<Record<string, unknown>> {
    return this.waitForLine((l) => l.msg === msg, timeoutMs);
  }

  /** SIGTERM, then the exit status (null when killed by a signal). */
  async terminate(timeoutMs = 30_000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL: no graceful stop, no final checkpoint. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** The exit status once the process ends (null when killed by a signal). */
  exit(): Promise<number | null> {
    return this.exited;
  }
}

/**
 * Starts `winchester ARGS` from the sources with `env` added to this process's environment; the process is
 * killed when the test ends if it still runs.
 */
export function startWinchester(t: TestScope, args: string[], env: NodeJS.ProcessEnv): WinchesterProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = new WinchesterProcess(child);
  t.after(() => p.kill());
  return p;
}

/** True while a process with this pid exists (signal 0 reaches it). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `bash scripts/<script> ARGS` from the repository root with exactly `env`; resolves with its exit
 * code (null when a signal ended it) and its stdout and stderr as they came, together. With `timeoutMs`,
 * a script still running then gets SIGTERM and the promise rejects with the output so far.
 */
export function runScript(
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs?: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [`scripts/${script}`, ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString('utf8');
    });
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGTERM');
            reject(new Error(`scripts/${script} did not finish within ${timeoutMs} ms:\n${output}`));
          }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const SHARED_PORTS = new Set([19092, 19093, 54329]);

/**
 * A TCP port on 127.0.0.1 nothing listens on right now (bound to port 0, then released), never one of the
 * shared services' (19092, 19093, 54329): for a process of the test to listen on, or to find nothing at.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
      });
    });
    if (!SHARED_PORTS.has(port)) return port;
  }
}
