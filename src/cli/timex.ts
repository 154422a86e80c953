import { createInterface } from 'node:readline';
import { UsageError } from '../errors.js';
import { contains, parseTimex, TimexError, TimexSyntaxError, type TimexValue } from '../timex/index.js';
import { DatetimeError, formatInstant, type Instant, nowInstant, parseDatetime } from '../timex/instant.js';
import { type CliIo, type Command, parseCommandArgs, write } from './io.js';

const usage = `Usage: winchester timex EXPR [--var NAME=DATETIME]...
       winchester timex --jsonl [--var NAME=DATETIME]... < cases.jsonl

Evaluates a time expression (the language of trigger expirations, time-valued distinguished_by
and timestamp criteria) and prints one JSON line:

  {"begin": "2014-08-01T00:00:00.000000Z", "end": "2014-08-02T00:00:00.000000Z", "range": true}

A single timestamp prints with begin = end and "range": false. Datetimes are ISO-8601 UTC with
six fractional digits.

Options:
      --var NAME=DATETIME   value of $NAME (repeatable). DATETIME is ISO-8601 or
                            '2015-01-22 02:50:22.702356'; without an offset it is UTC.
                            $timestamp is the current time unless given.
      --jsonl               read {"expr": ..., "vars": {NAME: DATETIME}} per line on stdin and print
                            one result per line, or {"error": message} for a line whose JSON,
                            expression or variables are bad (blank lines are skipped). --var values
                            are defaults that a line's "vars" override. Exits 0 unless stdin fails.
      --contains DATETIME   also print "contains": whether DATETIME lies in the result
                            (a range holds begin <= t < end; a timestamp only itself)
  -h, --help                show this help

Expressions:
  durations    1y 2mo 3d 4h 5m 6s 7us (juxtaposed units add up: 1d 6h 30m)
  $name        a variable; $timestamp defaults to now
  e + d, e - d add or subtract a duration; months and years clamp the day (Jan 31 + 1mo = Feb 28/29)
  e @ d        replace components: $timestamp @ 0h 0m 0s is midnight
  a to b       the range from a (inclusive) to b (exclusive)
  hour day month year
               the hour/day/month/year containing $timestamp, or day($start) etc. These ranges
               are pinned: + - @ of a duration smaller than the range wraps around so the range
               still contains its timestamp (day + 6h is 06:00 to 06:00 around $timestamp).
  ( )          grouping

Exit status: 0 ok, 1 the expression does not parse or cannot be evaluated (the message names
the position), 2 bad usage.
`;

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reads `NAME=DATETIME` assignments into instants; `where` prefixes error messages. */
function readVars(assignments: readonly string[], where: string): Record<string, Instant> {
  const vars: Record<string, Instant> = {};
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq < 0) throw new UsageError(`${where}expected NAME=DATETIME, got '${a}'`);
    const name = a.slice(0, eq).replace(/^\$/, '');
    if (!VAR_NAME.test(name)) throw new UsageError(`${where}invalid variable name '${name}'`);
    if (Object.hasOwn(vars, name)) throw new UsageError(`${where}variable '${name}' given twice`);
    try {
      vars[name] = parseDatetime(a.slice(eq + 1));
    } catch (err) {
      if (err instanceof DatetimeError) throw new UsageError(`${where}variable '${name}': ${err.message}`);
      throw err;
    }
  }
  return vars;
}

interface Result {
  begin: string;
  end: string;
  range: boolean;
  contains?: boolean;
}

function render(v: TimexValue, probe: Instant | undefined): Result {
  const out: Result =
    v.kind === 'range'
      ? { begin: formatInstant(v.begin), end: formatInstant(v.end), range: true }
      : { begin: formatInstant(v.at), end: formatInstant(v.at), range: false };
  if (probe !== undefined) out.contains = contains(v, probe);
  return out;
}

/** Evaluates one line of `--jsonl` input; every failure becomes `{"error": …}`. */
function evaluateLine(
  line: string,
  defaults: Record<string, Instant>,
  now: Instant,
  probe: Instant | undefined,
) {
  let input: unknown;
  try {
    input = JSON.parse(line);
  } catch (err) {
    return { error: `invalid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { error: 'expected a JSON object {"expr": ..., "vars": {...}}' };
  }
  const { expr, vars } = input as { expr?: unknown; vars?: unknown };
  if (typeof expr !== 'string') return { error: '"expr" must be a string' };
  const values: Record<string, Instant> = { ...defaults };
  if (vars !== undefined && vars !== null) {
    if (typeof vars !== 'object' || Array.isArray(vars)) return { error: '"vars" must be an object' };
    for (const [name, raw] of Object.entries(vars)) {
      if (typeof raw !== 'string') return { error: `variable '${name}' must be a datetime string` };
      try {
        values[name.replace(/^\$/, '')] = parseDatetime(raw);
      } catch (err) {
        return { error: `variable '${name}': ${err instanceof Error ? err.message : String(err)}` };
      }
    }
  }
  try {
    return render(parseTimex(expr).evaluate(values, now), probe);
  } catch (err) {
    if (err instanceof TimexError) return { error: err.message };
    throw err;
  }
}

async function runJsonl(
  io: CliIo,
  defaults: Record<string, Instant>,
  now: Instant,
  probe: Instant | undefined,
) {
  const lines = createInterface({ input: io.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  let buffer = '';
  for await (const line of lines) {
    if (line.trim() === '') continue;
    buffer += `${JSON.stringify(evaluateLine(line, defaults, now, probe))}\n`;
    // Batch writes: one await per line would dominate the cost of evaluating it.
    if (buffer.length >= 64 * 1024) {
      await write(io.stdout, buffer);
      buffer = '';
    }
  }
  if (buffer !== '') await write(io.stdout, buffer);
}

/**
 * Builds the `winchester timex` command. `clock` gives the default `$timestamp`; it is read once
 * per run, so every line of a `--jsonl` batch sees the same "now".
 */
export function createTimexCommand(clock: () => Instant = nowInstant): Command {
  return {
    name: 'timex',
    summary: 'evaluate a time expression (or a JSON-lines batch of them) and print the result',
    usage,
    async run(args: string[], io: CliIo): Promise<number> {
      const { values, positionals } = parseCommandArgs('timex', args, {
        var: { type: 'string', multiple: true },
        jsonl: { type: 'boolean' },
        contains: { type: 'string' },
      });
      const defaults = readVars(values.var ?? [], 'timex: --var: ');
      let probe: Instant | undefined;
      if (values.contains !== undefined) {
        try {
          probe = parseDatetime(values.contains);
        } catch (err) {
          throw new UsageError(`timex: --contains: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      const now = clock();
      if (values.jsonl) {
        if (positionals.length > 0)
          throw new UsageError('timex: --jsonl reads expressions from stdin; drop EXPR');
        await runJsonl(io, defaults, now, probe);
        return 0;
      }
      if (positionals.length === 0) throw new UsageError('timex: missing EXPR (see winchester timex --help)');
      if (positionals.length > 1) {
        throw new UsageError(
          `timex: expected one EXPR, got ${positionals.length} (quote the expression: winchester timex '${positionals.join(' ')}')`,
        );
      }
      const source = positionals[0]!;
      let result: Result;
      try {
        result = render(parseTimex(source).evaluate(defaults, now), probe);
      } catch (err) {
        if (err instanceof TimexSyntaxError) {
          await write(
            io.stderr,
            `winchester: timex: ${err.message}\n  ${err.pointer().replace('\n', '\n  ')}\n`,
          );
          return 1;
        }
        if (err instanceof TimexError) {
          await write(io.stderr, `winchester: timex: ${err.message}\n`);
          return 1;
        }
        throw err;
      }
      await write(io.stdout, `${JSON.stringify(result)}\n`);
      return 0;
    },
  };
}

/** The registered `winchester timex` command, on the wall clock. */
export const timexCommand: Command = createTimexCommand();
