/**
 * `npm run test:chaos` (node --import tsx test/chaos/run.ts [options]): the fault-injection suite at full
 * size on a private Kafka + PostgreSQL (docs/chaos.md). Prints the figures; exits 1 when a check failed.
 */
import { parseArgs } from 'node:util';
import { type ChaosOptions, FULL, runChaos, SHORT } from './scenario.js';

const usage = `Usage: npm run test:chaos -- [options]

Runs trigger and pipeline workers on a private Kafka broker and PostgreSQL server (scripts/infra.sh on
ports of their own), SIGKILLs workers and restarts both services while a notigen workload flows, drains,
and checks the outcome against 'winchester replay' (docs/chaos.md). Prints the figures.

Options (defaults: the full run):
  --short                  the CI preset (small workload, one fault of each kind)
  --instances N            notigen instances (${FULL.instances}; ~30 notifications per instance and day)
  --days N                 days simulated (${FULL.days})
  --seed N                 workload and kill-choice seed (${FULL.seed})
  --redeliveries P         chance of a redelivery right behind the original (${FULL.redeliveries})
  --resends P              chance of a resend 1–20 notifications later (${FULL.resends})
  --partitions N           stream-events and batches partitions (${FULL.partitions})
  --slices N               input slices; the faults happen between slices (${FULL.slices})
  --pace-ms MS             pause after each slice (${FULL.paceMs})
  --trigger-kills N        SIGKILLs of a random trigger worker (${FULL.triggerKills})
  --pipeline-kills N       SIGKILLs of a random pipeline worker (${FULL.pipelineKills})
  --commit-window-kills N  pipeline workers killed right after a commit(), before completion (${FULL.commitWindowKills})
  --kafka-restarts N       broker restarts (${FULL.kafkaRestarts})
  --postgres-restarts N    PostgreSQL restarts (${FULL.postgresRestarts})
  --down-ms MS             how long a restarted service stays down (${FULL.downMs})
  --postgres-stop MODE     fast | immediate (${FULL.postgresStop}: a crash, recovered on start)
  --session-timeout S      workers' consumer session timeout (${FULL.sessionTimeoutS})
  --keep                   keep the work directory (input, logs, effects) even when the run passes
  -h, --help               show this help
`;

function main(): number | Promise<number> {
  const { values } = parseArgs({
    options: {
      short: { type: 'boolean' },
      instances: { type: 'string' },
      days: { type: 'string' },
      seed: { type: 'string' },
      redeliveries: { type: 'string' },
      resends: { type: 'string' },
      partitions: { type: 'string' },
      slices: { type: 'string' },
      'pace-ms': { type: 'string' },
      'trigger-kills': { type: 'string' },
      'pipeline-kills': { type: 'string' },
      'commit-window-kills': { type: 'string' },
      'kafka-restarts': { type: 'string' },
      'postgres-restarts': { type: 'string' },
      'down-ms': { type: 'string' },
      'postgres-stop': { type: 'string' },
      'session-timeout': { type: 'string' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const base = values.short ? SHORT : FULL;
  const num = (name: keyof typeof values, fallback: number, integer = true): number => {
    const raw = values[name];
    if (raw === undefined) return fallback;
    const v = Number(raw);
    if (
      typeof raw !== 'string' ||
      raw.trim() === '' ||
      !Number.isFinite(v) ||
      v < 0 ||
      (integer && !Number.isInteger(v))
    )
      throw new Error(
        `--${name} expects a non-negative ${integer ? 'whole number' : 'number'}, got '${String(raw)}'`,
      );
    return v;
  };
  const stop = values['postgres-stop'] ?? base.postgresStop;
  if (stop !== 'fast' && stop !== 'immediate')
    throw new Error(`--postgres-stop is fast or immediate, not '${stop}'`);
  const options: ChaosOptions = {
    ...base,
    instances: num('instances', base.instances),
    days: num('days', base.days),
    seed: num('seed', base.seed),
    redeliveries: num('redeliveries', base.redeliveries, false),
    resends: num('resends', base.resends, false),
    partitions: Math.max(1, num('partitions', base.partitions)),
    slices: Math.max(1, num('slices', base.slices)),
    paceMs: num('pace-ms', base.paceMs),
    triggerKills: num('trigger-kills', base.triggerKills),
    pipelineKills: num('pipeline-kills', base.pipelineKills),
    commitWindowKills: num('commit-window-kills', base.commitWindowKills),
    kafkaRestarts: num('kafka-restarts', base.kafkaRestarts),
    postgresRestarts: num('postgres-restarts', base.postgresRestarts),
    downMs: num('down-ms', base.downMs),
    postgresStop: stop,
    sessionTimeoutS: Math.max(1, num('session-timeout', base.sessionTimeoutS)),
    keep: values.keep ?? false,
    log: (line) => process.stderr.write(`chaos: ${line}\n`),
  };
  return run(options);
}

async function run(options: ChaosOptions): Promise<number> {
  const report = await runChaos(options);
  const width = Math.max(...Object.keys(report.figures).map((k) => k.length));
  process.stdout.write('\nchaos figures\n');
  for (const [k, v] of Object.entries(report.figures)) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
  if (report.problems.length === 0) {
    process.stdout.write('\nchaos: PASSED\n');
    return 0;
  }
  process.stdout.write(
    `\nchaos: FAILED (${report.problems.length} problems; work directory kept: ${report.workDir})\n`,
  );
  for (const p of report.problems) process.stdout.write(`  - ${p}\n`);
  return 1;
}

// Ctrl-C or a kill: exit through process.exit so the clean-up hooks stop the workers and the services.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(`chaos: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
}
