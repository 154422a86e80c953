import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { InputError, UsageError } from '../errors.js';

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

/**
 * Opens a command's INPUT argument (stdin when absent or `-`), failing with an InputError (exit 1)
 * before anything is printed when it cannot be read.
 */
export async function openInput(input: string | undefined, io: CliIo): Promise<Readable> {
  if (input === undefined || input === '-') return io.stdin;
  const path = resolve(io.cwd, input);
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new InputError(`cannot read input '${input}': it is a directory`);
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(
      `cannot read input '${input}': ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  return createReadStream(path);
}

type ArgOptions = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses a subcommand's arguments strictly (unknown options are errors, positionals allowed) and
 * turns a parse failure into a {@link UsageError} (exit 2) prefixed with the command's name.
 */
export function parseCommandArgs<const O extends ArgOptions>(command: string, args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${command}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
