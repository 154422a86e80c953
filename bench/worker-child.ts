/**
 * A trigger worker in a process of its own, for the latency, heap and failover benchmarks: the real
 * `TriggerWorker` with the options the trigger-worker command builds (`triggerWorkerOptions`: its Kafka
 * client, and Avro with a schema registry), configured by etc/winchester.yaml and WINCHESTER_* variables
 * (the environment the parent passes), plus a small IPC hook the bench needs and the CLI does
 * not have:
 *  - `{cmd: 'heap'}`: a full GC (the process runs with --expose-gc), then process.memoryUsage();
 *    with `snapshot: true` also a heap snapshot summarised by constructor (bench/lib/heap-snapshot.ts);
 *  - `{cmd: 'metrics'}`: the worker's Prometheus text exposition (what /metrics serves);
 *  - `{cmd: 'stop'}` or SIGTERM: the worker's graceful stop, then exit 0 (`stopped` says when it ended).
 * It reports `ready` once started, and the consumer group events of both stages (`rebalancing`, `join`
 * with the assigned partitions) with the wall time they happened at, so the failover bench can split
 * detection from rebalance from restore.
 *
 *   node --import tsx --expose-gc bench/worker-child.ts <all|route|streams>   (spawned with fork(): IPC)
 */
import { getHeapSnapshot } from 'node:v8';
import { triggerWorkerOptions } from '../src/cli/trigger-worker.js';
import { workerAvro } from '../src/cli/worker-runtime.js';
import type { Consumer, Kafka } from '../src/kafka/types.js';
import type { Logger } from '../src/log.js';
import { type TriggerStages, TriggerWorker } from '../src/worker/trigger-worker.js';
import { workerProcessParts } from './lib/harness.js';
import { type HeapSnapshotJson, summarizeHeapSnapshot } from './lib/heap-snapshot.js';

/** Messages this process sends to its parent. */
export type ChildMessage =
  | { type: 'ready'; at: number }
  | { type: 'rebalancing'; at: number; group: string }
  | { type: 'join'; at: number; group: string; partitions: number[]; durationMs: number }
  | {
      type: 'heap';
      at: number;
      heapUsed: number;
      heapTotal: number;
      rss: number;
      external: number;
      arrayBuffers: number;
      summary?: { name: string; count: number; bytes: number }[];
    }
  | { type: 'metrics'; at: number; text: string }
  | { type: 'stopping'; at: number }
  | { type: 'stopped'; at: number }
  | { type: 'error'; at: number; message: string };

/** Messages the parent sends. */
export type ParentMessage = { cmd: 'heap'; snapshot?: boolean } | { cmd: 'metrics' } | { cmd: 'stop' };

function send(m: ChildMessage): void {
  process.send?.(m);
}

/** The Kafka client, with the two stages' consumers reporting their group events to the parent. */
function reporting(kafka: Kafka): Kafka {
  const consumer = (config: Parameters<Kafka['consumer']>[0]): Consumer => {
    const c = kafka.consumer(config);
    const group = config.groupId;
    // kafkajs emits REBALANCING when a heartbeat or commit learns that the group is rebalancing.
    const events = c.events as typeof c.events & { REBALANCING?: string };
    if (events.REBALANCING !== undefined) {
      c.on(events.REBALANCING as typeof c.events.GROUP_JOIN, () =>
        send({ type: 'rebalancing', at: Date.now(), group }),
      );
    }
    c.on(c.events.GROUP_JOIN, (e) => {
      const assigned = e.payload.memberAssignment as Record<string, number[]>;
      const partitions = Object.values(assigned)
        .flat()
        .sort((a, b) => a - b);
      send({ type: 'join', at: Date.now(), group, partitions, durationMs: e.payload.duration });
    });
    return c;
  };
  return new Proxy(kafka, {
    get(target, prop) {
      if (prop === 'consumer') return consumer;
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

async function heapSummary() {
  const chunks: string[] = [];
  for await (const chunk of getHeapSnapshot()) chunks.push(typeof chunk === 'string' ? chunk : String(chunk));
  const json = JSON.parse(chunks.join('')) as HeapSnapshotJson;
  chunks.length = 0;
  return summarizeHeapSnapshot(json).slice(0, 40);
}

async function main(): Promise<void> {
  const stages = (process.argv[2] ?? 'all') as TriggerStages;
  if (stages !== 'all' && stages !== 'route' && stages !== 'streams')
    throw new Error(`unknown stages ${stages}`);
  const gc = (globalThis as { gc?: () => void }).gc;
  const env = process.env;
  const { config, pool, metrics, log } = await workerProcessParts({
    bench: env.BENCH_LABEL ?? 'child',
    stages,
  });
  // The rebalances a benchmark causes make kafkajs warn ('The group is rebalancing, re-joining'); only
  // its errors are shown, unless BENCH_LOG=info.
  const workerLog: Logger = (level, msg, fields) => {
    const kafkaWarning = level === 'warn' && String(fields?.component ?? '').startsWith('kafka.');
    if (!kafkaWarning || env.BENCH_LOG === 'info') log(level, msg, fields);
  };
  const worker = await TriggerWorker.start(
    triggerWorkerOptions(config, {
      pool,
      log: workerLog,
      metrics,
      stages,
      onFatal: (error) => {
        send({
          type: 'error',
          at: Date.now(),
          message: error instanceof Error ? error.message : String(error),
        });
        process.exit(1);
      },
      avro: await workerAvro(config, workerLog, metrics),
      wrapKafka: reporting,
    }),
  );
  let stopRequested = false;
  const stop = () => {
    // SIGTERM, a stop message and the parent going away may all arrive: one graceful stop.
    if (stopRequested) return;
    stopRequested = true;
    void (async () => {
      send({ type: 'stopping', at: Date.now() });
      await worker.stop().catch((error: unknown) => log('warn', 'stop failed', { error: String(error) }));
      send({ type: 'stopped', at: Date.now() });
      await pool.end().catch(() => undefined);
      process.exit(0);
    })();
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
  process.on('message', (m: ParentMessage) => {
    void (async () => {
      if (m.cmd === 'stop') return stop();
      if (m.cmd === 'metrics')
        return send({ type: 'metrics', at: Date.now(), text: await metrics.registry.metrics() });
      if (m.cmd === 'heap') {
        if (gc === undefined) throw new Error('the worker process needs --expose-gc');
        // Several passes: weak references and finalizers free more on the second and third.
        for (let i = 0; i < 4; i++) gc();
        const u = process.memoryUsage();
        const summary = m.snapshot === true ? await heapSummary() : undefined;
        send({
          type: 'heap',
          at: Date.now(),
          heapUsed: u.heapUsed,
          heapTotal: u.heapTotal,
          rss: u.rss,
          external: u.external,
          arrayBuffers: u.arrayBuffers,
          ...(summary === undefined ? {} : { summary }),
        });
      }
    })().catch((error: unknown) => send({ type: 'error', at: Date.now(), message: String(error) }));
  });
  send({ type: 'ready', at: Date.now() });
}

main().catch((error: unknown) => {
  send({ type: 'error', at: Date.now(), message: error instanceof Error ? error.message : String(error) });
  process.stderr.write(`bench worker: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
