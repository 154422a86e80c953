import { commands } from './cli/commands.js';
import type { CliIo } from './cli/io.js';
import { ConfigError, InputError, UsageError, WinchesterError } from './errors.js';
import { version } from './version.js';

function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length), 8);
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'Usage: winchester <command> [options]',
    '',
    'Winchester on Kafka: distill OpenStack notifications into events, collect them into streams',
    'by trigger, and fire or expire those streams into pipelines of handlers.',
    '',
    'Commands:',
    ...lines,
    '',
    'Options:',
    '  -h, --help     show this help (or `winchester <command> --help`)',
    '  -V, --version  print the version',
    '',
  ].join('\n');
}

/** Maps an error to its exit status and prints it without a stack trace (unless WINCHESTER_DEBUG is set). */
function report(err: unknown, io: CliIo): number {
  const debug = Boolean(io.env.WINCHESTER_DEBUG);
  if (err instanceof UsageError) {
    io.stderr.write(`winchester: ${err.message}\n`);
    return 2;
  }
  if (err instanceof ConfigError) {
    io.stderr.write(`winchester: invalid configuration:\n${err.message}\n`);
    return 2;
  }
  if (err instanceof InputError) {
    io.stderr.write(`winchester: ${err.message}\n`);
    return 1;
  }
  if (err instanceof WinchesterError) {
    io.stderr.write(`winchester: ${err.message}\n`);
    if (debug && err.stack) io.stderr.write(`${err.stack}\n`);
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  io.stderr.write(`winchester: internal error: ${message}\n`);
  if (err instanceof Error && err.stack) {
    io.stderr.write(debug ? `${err.stack}\n` : '(set WINCHESTER_DEBUG=1 for the stack trace)\n');
  }
  return 70;
}

/** The CLI entry point: dispatches argv to a subcommand and resolves to the exit status. */
export async function main(argv: string[], io?: Partial<CliIo>): Promise<number> {
  const cio: CliIo = {
    stdin: io?.stdin ?? process.stdin,
    stdout: io?.stdout ?? process.stdout,
    stderr: io?.stderr ?? process.stderr,
    env: io?.env ?? process.env,
    cwd: io?.cwd ?? process.cwd(),
  };
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    const wanted = first === 'help' ? rest[0] : undefined;
    const cmd = wanted === undefined ? undefined : commands.find((c) => c.name === wanted);
    if (wanted !== undefined && !cmd) return report(new UsageError(`unknown command '${wanted}'`), cio);
    cio.stdout.write(cmd ? cmd.usage : topHelp());
    return first === undefined ? 2 : 0;
  }
  if (first === '-V' || first === '--version') {
    cio.stdout.write(`winchester ${version}\n`);
    return 0;
  }
  const cmd = commands.find((c) => c.name === first);
  if (!cmd) {
    const hint = first.startsWith('-') ? `unknown option '${first}'` : `unknown command '${first}'`;
    cio.stderr.write(`winchester: ${hint}\nRun 'winchester --help' for the list of commands.\n`);
    return 2;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    cio.stdout.write(cmd.usage);
    return 0;
  }
  try {
    return await cmd.run(rest, cio);
  } catch (err) {
    return report(err, cio);
  }
}
