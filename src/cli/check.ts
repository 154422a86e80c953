import { ConfigError, formatProblem, UsageError } from '../errors.js';
import { type CheckedConfiguration, checkConfiguration } from './check-config.js';
import { type CliIo, type Command, parseCommandArgs, write } from './io.js';

const usage = `Usage: winchester check [-c FILE] [--strict] [--quiet]

Validates winchester.yaml and every file it references (triggers.yaml, pipelines.yaml,
event_definitions.yaml, handler and plugin modules), with the environment overrides applied.
Every pipeline step is constructed once, as the pipeline worker does at start, so params a
handler refuses are reported here, at the line of the step or param.

Prints "ok: N triggers, N pipelines, N event definitions" and exits 0, or lists every problem
as "file:line:column: message" on stderr and exits 2. Check is stricter than a worker's start:
a key nothing reads in winchester.yaml, triggers.yaml or pipelines.yaml is a problem here (the
workers only warn, since the reference ignores such keys). Warnings (settings that have no
effect, unknown handler params, unknown keys in event definitions) go to stderr as
"file:line:column: warning: message" and do not fail the check.

Options:
  -c, --config FILE  the configuration file (default: $WINCHESTER_CONFIG, else ./winchester.yaml)
      --strict       treat warnings as problems (exit 2 when there are any)
  -q, --quiet        do not print warnings
  -h, --help         show this help
`;

function parse(args: string[]): { config: string | undefined; strict: boolean; quiet: boolean } {
  const { values, positionals } = parseCommandArgs('check', args, {
    config: { type: 'string', short: 'c' },
    strict: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
  });
  if (positionals.length > 0)
    throw new UsageError(`check: unexpected argument '${positionals[0]}' (use -c FILE)`);
  return { config: values.config, strict: values.strict ?? false, quiet: values.quiet ?? false };
}

// Always the plural form: the summary line is a fixed, machine-readable contract (SPEC §7).
const plural = (n: number, word: string) => `${n} ${word}s`;

export const checkCommand: Command = {
  name: 'check',
  summary: 'validate winchester.yaml and every configuration file it references',
  usage,
  async run(args: string[], io: CliIo): Promise<number> {
    const opts = parse(args);
    const path = opts.config ?? io.env.WINCHESTER_CONFIG ?? 'winchester.yaml';
    let checked: CheckedConfiguration;
    try {
      checked = await checkConfiguration(path, { env: io.env, cwd: io.cwd });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      const lines = err.problems.map(formatProblem);
      await write(
        io.stderr,
        `${lines.join('\n')}\nwinchester: invalid configuration: ${lines.length} problem${lines.length === 1 ? '' : 's'}\n`,
      );
      return 2;
    }
    const { config } = checked;
    const warnings = checked.warnings.map((w) => formatProblem({ ...w, message: `warning: ${w.message}` }));
    if (warnings.length > 0 && !opts.quiet) await write(io.stderr, `${warnings.join('\n')}\n`);
    if (opts.strict && warnings.length > 0) {
      await write(io.stderr, `winchester: ${plural(warnings.length, 'warning')} (--strict)\n`);
      return 2;
    }
    const events = config.eventDefinitionCount;
    await write(
      io.stdout,
      `ok: ${plural(config.triggers.length, 'trigger')}, ${plural(config.pipelines.size, 'pipeline')}, ${plural(events, 'event definition')}\n`,
    );
    return 0;
  },
};
