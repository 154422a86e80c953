/**
 * Route-stage micro-benchmark: the CPU work the trigger worker's route stage does per notification,
 * in-process and without Kafka, step by step, beside `JSON.parse` of the same notifications measured in
 * the same run.
 *
 *   node --import tsx bench/route.ts                       # 20,000 notifications, 5 runs
 *   node --import tsx bench/route.ts --notifications 50000 --runs 7
 *
 * Workload: the e2e bench's (bench/run.ts): notigen seed 1, 3 days, `ceil(N / 60)` instances, the first
 * N notifications as JSON text in Buffers (what kafkajs hands the consumer), keyed as `winchester
 * produce` keys them; etc/winchester.yaml's event definitions and triggers (the StackTach set), JSON
 * records, 4 stream-events partitions.
 *
 * Steps (each timed alone over the whole workload, on inputs prepared beforehand):
 *  - `toString + JSON.parse`: the baseline, what a raw consumer does with each value;
 *  - distill: `Distiller.distill` of the parsed notifications;
 *  - match: every trigger's `match` for every distilled event;
 *  - record key + encode: `streamRecordKey` and the codec's `encodeStreamEvent` per matched trigger
 *    (the generic path, without the router's per-stream cache);
 *  - records: `appendEventRecords` as the router calls it (match, then key, value and partition of each
 *    record, with the per-stream cache), kept in chunks of 500 records as the router keeps them;
 *  - partition: `PartitionCache.of` per record key;
 *  - route (all): `Router.route` over the Buffers in chunks of 500, which is all of the above plus glue;
 *  - kafkajs produce encode: kafkajs' Produce request encoding of the records `route` returned (per
 *    chunk, grouped by partition, as its producer does before sending), encoded again every run;
 *  - route + kafkajs produce encode: both on fresh output chunk by chunk, as the worker does (the
 *    truest figure: a string value's first encode pays for flattening it, a repeated one does not).
 *
 * Times are CPU (user + system) per notification, best of `--runs` after a warm-up, so they are stable
 * on a shared machine; the ratio column divides by the baseline of the same run.
 */
import { loadavg } from 'node:os';
import { loadConfig } from '../src/config/load.js';
import type { Distiller } from '../src/distill/index.js';
import { judgeLine } from '../src/kafka/notification-key.js';
import { PartitionCache } from '../src/kafka/partitioner.js';
import { type EncodableTopic, encodeProduceRequest } from '../src/kafka/produce-encode.js';
import { streamRecordKey } from '../src/kafka/records.js';
import type { Event } from '../src/model/event.js';
import { generateNotifications } from '../src/notigen/index.js';
import { jsonCodec } from '../src/serde/codec.js';
import type { TriggerDefinition, TriggerMatch } from '../src/triggers/types.js';
import {
  appendEventRecords,
  type InboundMessage,
  type OutboundMessage,
  Router,
  StreamRecordCache,
} from '../src/worker/router.js';
import { writeResults } from './lib/harness.js';

const CONFIG_FILE = new URL('../etc/winchester.yaml', import.meta.url).pathname;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} needs a positive integer`);
  return n;
}

const N = arg('notifications', 20_000);
const RUNS = arg('runs', 5);
const PARTITIONS = arg('partitions', 4);
const CHUNK = 500;
/** `--only <text>`: time only the steps whose name contains it (e.g. under --cpu-prof). */
const ONLY = ((i) => (i < 0 ? undefined : process.argv[i + 1]))(process.argv.indexOf('--only'));
const say = (line: string) => process.stdout.write(`${line}\n`);

/** The e2e bench's workload: the first N notigen notifications (seed 1) as Kafka would deliver them. */
function buildWorkload(): InboundMessage[] {
  const days = 3;
  let instances = Math.max(10, Math.ceil(N / (20 * days)));
  for (;;) {
    const out: InboundMessage[] = [];
    for (const n of generateNotifications({ seed: 1, instances, days, count: N })) {
      const text = JSON.stringify(n);
      const verdict = judgeLine(text);
      if (!verdict.ok) throw new Error(`notigen produced an unkeyable notification: ${verdict.detail}`);
      out.push({
        offset: String(out.length),
        key: verdict.key === null ? null : Buffer.from(verdict.key),
        value: Buffer.from(text, 'utf8'),
      });
    }
    if (out.length >= N) return out;
    instances *= 2;
  }
}

/** A sink the JIT cannot see through, so no measured work is optimised away. */
let sink = 0;

interface Step {
  readonly name: string;
  readonly note: string;
  readonly run: () => void | Promise<void>;
  best: number;
}

async function main(): Promise<void> {
  const config = await loadConfig(CONFIG_FILE, { env: {} });
  const distiller = config.distiller as Distiller | null;
  if (distiller === null || config.triggers.length === 0) {
    throw new Error(`${CONFIG_FILE} must configure event definitions and triggers`);
  }
  const triggers: readonly TriggerDefinition[] = config.triggers;
  const t0 = Date.now();
  const messages = buildWorkload();
  const bytes = messages.reduce((s, m) => s + (m.value?.length ?? 0), 0);

  // Inputs of each step, prepared once (the outputs of the step before it).
  const parsed = messages.map((m) => JSON.parse((m.value as Buffer).toString('utf8')) as unknown);
  const events: Event[] = [];
  for (const p of parsed) {
    const r = distiller.distill(p);
    if (r.ok) events.push(r.event);
  }
  const matches: { def: TriggerDefinition; match: TriggerMatch & { matched: true }; event: Event }[] = [];
  for (const event of events) {
    for (const def of triggers) {
      const m = def.match(event, event.timestamp);
      if (m.matched) matches.push({ def, match: m, event });
    }
  }
  const keys = matches.map((m) => streamRecordKey(m.def.name, m.match.key));
  const newRouter = () =>
    new Router({
      distiller,
      triggers,
      streamEventsTopic: 'stream-events',
      deadLetterTopic: 'dead-letter',
      codec: jsonCodec,
      streamEventsPartitions: PARTITIONS,
    });
  const chunks: InboundMessage[][] = [];
  for (let i = 0; i < messages.length; i += CHUNK) chunks.push(messages.slice(i, i + CHUNK));
  const routed = chunks.map((c) => newRouter().route('notifications', 0, c));
  const records = routed.reduce((s, r) => s + r.length, 0);
  say(
    `workload: ${N.toLocaleString('en-US')} notigen notifications (seed 1), ${Math.round(bytes / N)} B mean; ` +
      `${events.length.toLocaleString('en-US')} events, ${records.toLocaleString('en-US')} stream-events records; ` +
      `prepared in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );

  const steps: Step[] = [
    {
      name: 'toString + JSON.parse (baseline)',
      note: 'per notification',
      best: Number.POSITIVE_INFINITY,
      run: () => {
        for (const m of messages)
          sink += (JSON.parse((m.value as Buffer).toString('utf8')) as object) ? 1 : 0;
      },
    },
    {
      name: 'distill (parsed → event)',
      note: 'Distiller.distill',
      best: Number.POSITIVE_INFINITY,
      run: () => {
        for (const p of parsed) sink += distiller.distill(p).ok ? 1 : 0;
      },
    },
    {
      name: 'match (all triggers)',
      note: 'TriggerDefinition.match',
      best: Number.POSITIVE_INFINITY,
      run: () => {
        for (const e of events) {
          for (const def of triggers) sink += def.match(e, e.timestamp).matched ? 1 : 0;
        }
      },
    },
    {
      name: 'record key + encode',
      note: 'streamRecordKey + encodeStreamEvent',
      best: Number.POSITIVE_INFINITY,
      run: () => {
        let watermark = 0;
        for (const m of matches) {
          if (m.event.timestamp > watermark) watermark = m.event.timestamp;
          sink += streamRecordKey(m.def.name, m.match.key).length;
          const v = jsonCodec.encodeStreamEvent({
            trigger: m.def.name,
            key: m.match.key,
            distinguishing: m.match.distinguishing,
            event: m.event,
            watermark,
          });
          sink += v.length;
        }
      },
    },
    {
      name: 'records (match + key + encode + part.)',
      note: "appendEventRecords, the router's per-event path",
      best: Number.POSITIVE_INFINITY,
      run: () => {
        const target = {
          triggers,
          streamEventsTopic: 'stream-events',
          codec: jsonCodec,
          partitions: new PartitionCache(PARTITIONS),
          streams: new StreamRecordCache(triggers.length),
        };
        let out: OutboundMessage[] = [];
        let watermark = 0;
        for (const e of events) {
          if (e.timestamp > watermark) watermark = e.timestamp;
          appendEventRecords(out, e, target, watermark);
          if (out.length >= CHUNK) {
            sink += out.length;
            out = [];
          }
        }
      },
    },
    {
      name: 'partition pick',
      note: 'PartitionCache.of (cached per key)',
      best: Number.POSITIVE_INFINITY,
      run: () => {
        const cache = new PartitionCache(PARTITIONS);
        for (const k of keys) sink += cache.of(k);
      },
    },
    {
      name: 'route (all of the above + glue)',
      note: 'Router.route, chunks of 500 Buffers',
      best: Number.POSITIVE_INFINITY,
      run: () => {
        const router = newRouter();
        for (const c of chunks) sink += router.route('notifications', 0, c).length;
      },
    },
    {
      name: 'kafkajs produce encode',
      note: "the routed records, kafkajs' Produce request per chunk",
      best: Number.POSITIVE_INFINITY,
      run: async () => {
        for (const out of routed) sink += (await encodeProduceRequest(byPartition(out))).length;
      },
    },
    {
      name: 'route + kafkajs produce encode',
      note: 'both on fresh output, as the worker does per chunk',
      best: Number.POSITIVE_INFINITY,
      run: async () => {
        const router = newRouter();
        for (const c of chunks) {
          sink += (await encodeProduceRequest(byPartition(router.route('notifications', 0, c)))).length;
        }
      },
    },
  ];

  if (ONLY !== undefined) {
    const kept = steps.filter((s, i) => i === 0 || s.name.includes(ONLY));
    steps.length = 0;
    steps.push(...kept);
  }
  for (let run = 0; run <= RUNS; run++) {
    // Interleaved, so a burst of load from other processes hits every step alike; run 0 warms up.
    for (const step of steps) {
      if (run === 0) {
        await step.run();
        continue;
      }
      const s = await timeStep(step);
      if (s < step.best) step.best = s;
    }
  }

  const base = (steps[0] as Step).best;
  const rows = steps.map((s) => ({
    step: s.name,
    usPerNotification: (s.best / N) * 1e6,
    ratio: s.best / base,
    note: s.note,
  }));
  say(
    `\nCPU µs per notification, best of ${RUNS} (load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}):`,
  );
  say(`${'step'.padEnd(36)} ${'µs/notif'.padStart(9)} ${'× parse'.padStart(8)}  note`);
  for (const r of rows) {
    say(
      `${r.step.padEnd(36)} ${r.usPerNotification.toFixed(2).padStart(9)} ${r.ratio.toFixed(2).padStart(8)}  ${r.note}`,
    );
  }
  const file = writeResults('route', {
    notifications: N,
    events: events.length,
    records,
    runs: RUNS,
    loadavg: loadavg(),
    node: process.version,
    steps: rows,
  });
  say(`\nresults: ${file} (checksum ${sink})`);
}

async function timeStep(step: Step): Promise<number> {
  const c0 = process.cpuUsage();
  const r = step.run();
  if (r instanceof Promise) await r;
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

/** Records of one route call grouped by topic and partition, as kafkajs' producer groups them. */
function byPartition(out: readonly OutboundMessage[]): EncodableTopic[] {
  const topics = new Map<string, Map<number, OutboundMessage[]>>();
  for (const m of out) {
    let t = topics.get(m.topic);
    if (t === undefined) {
      t = new Map();
      topics.set(m.topic, t);
    }
    const p = m.partition ?? 0;
    const list = t.get(p);
    if (list === undefined) t.set(p, [m]);
    else list.push(m);
  }
  return [...topics].map(([topic, parts]) => ({
    topic,
    partitions: [...parts].map(([partition, messages]) => ({ partition, messages })),
  }));
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
