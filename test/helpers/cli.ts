/**
 * Runs the `winchester` CLI in-process, the way tests want it: argv in, string stdin in, collected
 * stdout/stderr and the exit status out. No child process, so a test costs milliseconds and a
 * failure shows the real stack.
 *
 * ```ts
 * const r = await runCli(['distill', '--definitions', file], { stdin: lines.join('\n') });
 * assert.equal(r.code, 0);
 * const events = r.stdoutLines().map((l) => JSON.parse(l));
 * ```
 */
import { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { main } from '../../src/main.js';

/** What a CLI run produced. */
export interface CliResult {
  /** The exit status `main` resolved to. */
  code: number;
  /** Everything written to stdout, decoded as UTF-8. */
  stdout: string;
  /** Everything written to stderr, decoded as UTF-8. */
  stderr: string;
  /** stdout split into lines, without the empty string a trailing newline leaves. */
  stdoutLines(): string[];
  /** stderr split into lines, without the empty string a trailing newline leaves. */
  stderrLines(): string[];
}

/** Options of {@link runCli}; every field is optional. */
export interface CliRunOptions {
  /** Text (or bytes) fed on stdin; default: empty stdin that ends immediately. */
  stdin?: string | Buffer | Iterable<string | Buffer> | AsyncIterable<string | Buffer>;
  /** Environment variables; default: an empty environment (tests must not depend on the caller's). */
  env?: NodeJS.ProcessEnv;
  /** Working directory relative paths are resolved against; default: `process.cwd()`. */
  cwd?: string;
}

/** A Writable that keeps every chunk it is given. */
class Collector extends Writable {
  // A streaming decoder keeps a multi-byte character split across two writes intact.
  private readonly decoder = new StringDecoder('utf8');
  private collected = '';

  override _write(
    chunk: Buffer | string,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ) {
    this.collected += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    callback();
  }

  text(): string {
    this.collected += this.decoder.end();
    return this.collected;
  }
}

function splitLines(s: string): string[] {
  if (s === '') return [];
  const lines = s.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function toReadable(input: CliRunOptions['stdin']): Readable {
  if (input === undefined) return Readable.from([]);
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    // A single chunk; Readable.from would iterate a string character by character.
    return Readable.from([typeof input === 'string' ? Buffer.from(input, 'utf8') : input]);
  }
  return Readable.from(input as Iterable<string | Buffer> | AsyncIterable<string | Buffer>);
}

/** Runs `winchester ...argv` in-process and collects what it printed and its exit status. */
export async function runCli(argv: string[], options: CliRunOptions = {}): Promise<CliResult> {
  const stdout = new Collector();
  const stderr = new Collector();
  const code = await main(argv, {
    stdin: toReadable(options.stdin),
    stdout,
    stderr,
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
  });
  const out = stdout.text();
  const err = stderr.text();
  return {
    code,
    stdout: out,
    stderr: err,
    stdoutLines: () => splitLines(out),
    stderrLines: () => splitLines(err),
  };
}
