import type { Readable, Writable } from 'node:stream';

/** The streams a command talks to; tests pass their own. */
export interface CliIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Environment variables, for configuration overrides. */
  env: NodeJS.ProcessEnv;
  /** Working directory that relative paths on the command line are resolved against. */
  cwd: string;
}

/** A subcommand of the `winchester` CLI. `run` resolves to the process exit status. */
export interface Command {
  name: string;
  /** One line for `winchester --help`. */
  summary: string;
  /** Full usage text for `winchester NAME --help`. */
  usage: string;
  run(args: string[], io: CliIo): Promise<number>;
}

/** Writes a string and waits until the stream has taken it (keeps output ordered on pipes). */
export function write(out: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(text, (err) => (err ? reject(err) : resolve()));
  });
}
