import { resolve } from 'node:path';
import { type Distiller, loadDistiller, type MalformedReason } from '../distill/index.js';
import { formatProblem, InputError, UsageError } from '../errors.js';
import { eventToJson } from '../model/event-json.js';
import { readJsonRecords } from '../model/json-records.js';
import { type CliIo, type Command, openInput, parseCommandArgs, write } from './io.js';

const usage = `Usage: winchester distill --definitions FILE [--catch-all] [--plugin NAME=MODULE[#EXPORT]]... [INPUT]

Distills OpenStack notifications into events with an event_definitions.yaml, offline.

Reads notifications from INPUT (or stdin when INPUT is absent or '-') as JSON lines or as one
JSON array; oslo.messaging v2 envelopes are unwrapped. Prints one event per line as flat JSON:
message_id, event_type, timestamp and every trait at top level (datetimes as
2015-01-22T02:50:22.702356Z, ints and floats as JSON numbers; a float always has a '.' or an
exponent). Notifications no definition matches, and malformed ones, print nothing; malformed
ones are reported on stderr with their line number. A summary goes to stderr at the end.

Options:
  -d, --definitions FILE          the event_definitions.yaml (required)
      --catch-all                 also distill notifications no definition matches, with only
                                  the default traits (winchester.yaml catch_all_notifications)
      --plugin NAME=MODULE[#EXPORT]
                                  register a trait plugin from a JS module (repeatable; MODULE
                                  relative to the working directory; EXPORT defaults to default)
  -q, --quiet                     no per-line reports and no summary on stderr
  -h, --help                      show this help

Exit status: 0 (even when some notifications are malformed), 1 when INPUT cannot be read,
2 for bad usage or an invalid definitions file.
`;

interface Options {
  definitions: string;
  catchAll: boolean;
  plugins: Record<string, string>;
  input: string | undefined;
  quiet: boolean;
}

function parse(args: string[]): Options {
  const { values, positionals } = parseCommandArgs('distill', args, {
    definitions: { type: 'string', short: 'd' },
    'catch-all': { type: 'boolean' },
    plugin: { type: 'string', multiple: true },
    quiet: { type: 'boolean', short: 'q' },
  });
  if (values.definitions === undefined || values.definitions === '') {
    throw new UsageError('distill: --definitions FILE is required');
  }
  if (positionals.length > 1)
    throw new UsageError(`distill: unexpected argument '${positionals[1]}' (one INPUT at most)`);
  const plugins: Record<string, string> = {};
  for (const p of values.plugin ?? []) {
    const eq = p.indexOf('=');
    if (eq <= 0 || eq === p.length - 1)
      throw new UsageError(`distill: --plugin expects NAME=MODULE[#EXPORT], got '${p}'`);
    plugins[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return {
    definitions: values.definitions,
    catchAll: values['catch-all'] ?? false,
    plugins,
    input: positionals[0],
    quiet: values.quiet ?? false,
  };
}

// Output is batched: one write per ~64 KiB keeps a large distill fast and still streams.
const FLUSH_AT = 64 * 1024;
// A flood of bad lines should not bury the summary.
const MAX_REPORTED = 100;

async function run(args: string[], io: CliIo): Promise<number> {
  const opts = parse(args);
  const distiller: Distiller = await loadDistiller(resolve(io.cwd, opts.definitions), {
    displayName: opts.definitions,
    catchAll: opts.catchAll,
    pluginModules: opts.plugins,
    baseDir: io.cwd,
  });
  if (!opts.quiet) {
    for (const w of distiller.warnings)
      await write(io.stderr, `winchester: ${formatProblem({ ...w, message: `warning: ${w.message}` })}\n`);
  }
  const input = await openInput(opts.input, io);

  let distilled = 0;
  let unmatched = 0;
  let malformedCount = 0;
  const reasons = new Map<MalformedReason, number>();
  let out = '';
  let err = '';
  const report = (line: number, reason: string, detail: string) => {
    malformedCount++;
    if (opts.quiet) return;
    if (malformedCount <= MAX_REPORTED)
      err += `winchester: line ${line}: malformed notification (${reason}): ${detail}\n`;
    else if (malformedCount === MAX_REPORTED + 1)
      err += `winchester: further malformed notifications are counted but not shown\n`;
  };

  try {
    for await (const rec of readJsonRecords(input)) {
      if (rec.error !== undefined) {
        reasons.set('invalid_json', (reasons.get('invalid_json') ?? 0) + 1);
        report(rec.line, 'invalid_json', rec.error);
        continue;
      }
      const r = distiller.distillJson(rec.text!);
      if (r.ok) {
        distilled++;
        out += `${eventToJson(r.event)}\n`;
        if (out.length >= FLUSH_AT) {
          await write(io.stdout, out);
          out = '';
        }
      } else if (r.kind === 'unmatched') {
        unmatched++;
      } else {
        reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
        report(rec.line, r.reason, r.detail);
      }
      if (err.length >= FLUSH_AT / 8) {
        await write(io.stderr, err);
        err = '';
      }
    }
  } catch (e) {
    if (out) await write(io.stdout, out);
    if (err) await write(io.stderr, err);
    throw new InputError(
      `cannot read input '${opts.input ?? '-'}': ${e instanceof Error ? e.message : String(e)}`,
      {
        cause: e,
      },
    );
  }
  if (out) await write(io.stdout, out);
  if (!opts.quiet) {
    const byReason = [...reasons.entries()].map(([k, n]) => `${k}: ${n}`).join(', ');
    err += `distilled ${distilled}, unmatched ${unmatched}, malformed ${malformedCount}${byReason ? ` (${byReason})` : ''}\n`;
  }
  if (err) await write(io.stderr, err);
  return 0;
}

export const distillCommand: Command = {
  name: 'distill',
  summary: 'distill notifications (JSON lines or array) into events with an event_definitions.yaml',
  usage,
  run,
};
