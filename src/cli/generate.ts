import { createWriteStream } from 'node:fs';
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { InputError, UsageError } from '../errors.js';
import { DEFAULT_START, type GenerateOptions, NotificationGenerator } from '../notigen/generator.js';
import { loadTemplates } from '../notigen/template.js';
import { type CliIo, type Command, parseCommandArgs, write } from './io.js';

const usage = `Usage: winchester generate [options]

Prints a realistic, seeded stream of OpenStack Nova notifications as JSON lines, in timestamp
order: N instances over D days, each created, operated on (resize, rebuild, reboot, power off,
snapshot, rescue, …), sometimes deleted, with an end-of-day compute.instance.exists per instance
and day (audit period 00:00 to 00:00). The same options always print the same output.

Options:
      --seed N              PRNG seed (default 1)
      --instances N         number of instances (default 10)
      --days N              number of days (default 1)
      --start DATE          first day, YYYY-MM-DD (default ${DEFAULT_START})
      --ops-per-day X       mean operations per instance and day (default 2)
      --delete-rate P       chance an instance is deleted on a given later day (default 0.05)
      --failed-creates P    fraction of instances whose creation fails (default 0.05)
      --duplicates P        chance a notification is delivered twice, same message_id (default 0)
      --oslo P              fraction wrapped in the oslo.messaging v2 envelope (default 0)
      --count N             stop after N notifications
      --templates DIR       template directory (default: the bundled notigen templates)
  -o, --output FILE         write to FILE instead of stdout
  -h, --help                show this help

A summary (notifications, instances, operations) goes to stderr.
`;

function numberOption(name: string, raw: string | undefined, integer: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw new UsageError(`generate: --${name} expects ${integer ? 'an integer' : 'a number'}, got '${raw}'`);
  }
  return v;
}

interface Parsed {
  options: GenerateOptions;
  templates: string | undefined;
  output: string | undefined;
}

function parse(args: string[]): Parsed {
  const { values, positionals } = parseCommandArgs('generate', args, {
    seed: { type: 'string' },
    instances: { type: 'string' },
    days: { type: 'string' },
    start: { type: 'string' },
    'ops-per-day': { type: 'string' },
    'delete-rate': { type: 'string' },
    'failed-creates': { type: 'string' },
    duplicates: { type: 'string' },
    oslo: { type: 'string' },
    count: { type: 'string' },
    templates: { type: 'string' },
    output: { type: 'string', short: 'o' },
  });
  if (positionals.length > 0) {
    throw new UsageError(`generate: unexpected argument '${positionals[0]}' (generate takes options only)`);
  }
  const str = (k: keyof typeof values): string | undefined => values[k];
  const options: GenerateOptions = {};
  const set = <K extends keyof GenerateOptions>(key: K, v: GenerateOptions[K] | undefined) => {
    if (v !== undefined) options[key] = v;
  };
  set('seed', numberOption('seed', str('seed'), true));
  set('instances', numberOption('instances', str('instances'), true));
  set('days', numberOption('days', str('days'), true));
  set('start', str('start'));
  set('operationsPerDay', numberOption('ops-per-day', str('ops-per-day'), false));
  set('deleteRate', numberOption('delete-rate', str('delete-rate'), false));
  set('failedCreateRate', numberOption('failed-creates', str('failed-creates'), false));
  set('duplicates', numberOption('duplicates', str('duplicates'), false));
  set('osloEnvelope', numberOption('oslo', str('oslo'), false));
  set('count', numberOption('count', str('count'), true));
  return { options, templates: str('templates'), output: str('output') };
}

/** Writes the generator's output in large chunks, honouring the stream's back-pressure. */
async function pump(gen: NotificationGenerator, out: Writable): Promise<void> {
  const CHUNK = 256 * 1024;
  let buf = '';
  for (const line of gen.lines()) {
    buf += `${line}\n`;
    if (buf.length >= CHUNK) {
      await write(out, buf);
      buf = '';
    }
  }
  if (buf) await write(out, buf);
}

export const generateCommand: Command = {
  name: 'generate',
  summary: 'print a seeded, realistic stream of Nova notifications (notigen workload) as JSON lines',
  usage,
  async run(args: string[], io: CliIo): Promise<number> {
    const { options, templates, output } = parse(args);
    if (templates !== undefined) options.templates = loadTemplates(resolve(io.cwd, templates));
    const gen = new NotificationGenerator(options);
    if (output === undefined) {
      await pump(gen, io.stdout);
    } else {
      const file = resolve(io.cwd, output);
      const out = createWriteStream(file);
      const failed = new Promise<never>((_, reject) =>
        out.once('error', (err) =>
          reject(new InputError(`cannot write ${file}: ${err.message}`, { cause: err })),
        ),
      );
      failed.catch(() => {}); // raced below; keeps a late error from being an unhandled rejection
      await Promise.race([pump(gen, out), failed]);
      await Promise.race([new Promise<void>((done) => out.end(done)), failed]);
    }
    const s = gen.stats;
    await write(
      io.stderr,
      `generated ${s.notifications} notifications (${s.duplicates} duplicates, ${s.enveloped} in oslo envelopes): ` +
        `${s.instancesCreated} instances created, ${s.instancesFailed} failed, ${s.instancesDeleted} deleted ` +
        `(${s.deletesFailed} delete${s.deletesFailed === 1 ? '' : 's'} failed), ` +
        `${s.operations} operations, ${s.exists} end-of-day exists\n`,
    );
    return 0;
  },
};
