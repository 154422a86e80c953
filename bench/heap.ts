/**
 * Heap per active stream of a trigger worker: a real worker (both stages, wall clock, a process of its
 * own started with --expose-gc) is given notifications that each open a stream of the StackTach trigger
 * and never fire (one compute.instance.update per distinct instance, stamped now: the streams expire in
 * 2 days). Once everything is checkpointed, a full GC, then heapUsed; minus the same worker's heapUsed
 * with 0 streams, measured the same way before the first notification; divided by the active streams
 * (winchester_streams_active). With --snapshot, heap snapshots at 0 and at the first size are summarised
 * by constructor and compared: which structures hold the memory.
 *
 *   npm run bench -- --only heap                       # 100k and 1M streams
 *   npm run bench -- --only heap --quick               # 10k and 50k
 *   node --import tsx bench/heap.ts --sizes 100000,1000000 --partitions 4 --snapshot
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BenchError,
  flag,
  machineLine,
  numberArg,
  openRun,
  openStreams,
  runAsMain,
  say,
  WorkerProcess,
} from './lib/harness.js';
import { type ConstructorSize, diffHeapSummaries } from './lib/heap-snapshot.js';
import { fmtInt, table } from './lib/output.js';
import { parseMetricSum } from './lib/stats.js';

export const HEAP_TARGET_BYTES = 500;

export interface HeapPoint {
  streams: number;
  heapUsed: number;
  rss: number;
  bytesPerStream: number;
  loadSeconds: number;
  notificationsPerSecond: number;
}

export interface HeapResult {
  partitions: number;
  baseline: { heapUsed: number; rss: number };
  points: HeapPoint[];
  growth?: ConstructorSize[];
}

function sizesFrom(argv: readonly string[], quick: boolean): number[] {
  const i = argv.indexOf('--sizes');
  const raw = i >= 0 ? (argv[i + 1] ?? '') : quick ? '10000,50000' : '100000,1000000';
  const sizes = raw.split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n <= 0))
    throw new BenchError('--sizes needs positive integers, e.g. 100000,1000000');
  return sizes.sort((a, b) => a - b);
}

export async function runHeap(argv: readonly string[]): Promise<HeapResult> {
  const quick = flag(argv, 'quick');
  const sizes = sizesFrom(argv, quick);
  const partitions = numberArg(argv, 'partitions', 4);
  const snapshot = flag(argv, 'snapshot');
  const stallMs = numberArg(argv, 'stall-seconds', 180) * 1000;
  say(`\n== heap per active stream (${sizes.map(fmtInt).join(', ')} streams, ${partitions} partitions)`);
  say(machineLine());
  const run = await openRun('heap', partitions, { WINCHESTER_CLOCK_MODE: 'wall' });
  let worker: WorkerProcess | undefined;
  try {
    worker = await WorkerProcess.start('heap', 'all', run.env);
    const streamsGroup = `${run.clientId}.streams`;
    const routeGroup = `${run.clientId}.route`;
    // Both groups joined and every partition assigned: the worker is in its steady idle state.
    for (let t = Date.now(); ; await sleep(200)) {
      if (
        worker.partitions(streamsGroup).length === partitions &&
        worker.partitions(routeGroup).length === partitions
      )
        break;
      if (Date.now() - t > 60_000) throw new BenchError('the worker did not join both groups within 60 s');
    }
    // A few ticks and a checkpoint of every (empty) partition, so the baseline has what steady state has.
    await sleep(5000);
    const base = await worker.heap();
    let baseSummary: ConstructorSize[] | undefined;
    if (snapshot) baseSummary = (await worker.heap(true)).summary;
    say(
      `baseline (0 streams): heapUsed ${fmtInt(base.heapUsed / 1024)} KiB, rss ${fmtInt(base.rss / 2 ** 20)} MiB`,
    );
    const points: HeapPoint[] = [];
    let growth: ConstructorSize[] | undefined;
    let produced = 0;
    for (const size of sizes) {
      let lastSay = 0;
      const { produceSeconds, loadSeconds } = await openStreams(
        run,
        size - produced,
        partitions,
        stallMs,
        (behind) => {
          if (Date.now() - lastSay > 15_000) {
            lastSay = Date.now();
            say(`  … ${fmtInt(Number(behind))} records behind`);
          }
        },
      );
      produced = size;
      const text = await worker.metrics();
      const active = parseMetricSum(text, 'winchester_streams_active');
      if (active !== size)
        throw new BenchError(`expected ${size} active streams, the worker reports ${active}`);
      await sleep(2000);
      const h = await worker.heap();
      const point: HeapPoint = {
        streams: active,
        heapUsed: h.heapUsed,
        rss: h.rss,
        bytesPerStream: (h.heapUsed - base.heapUsed) / active,
        loadSeconds,
        notificationsPerSecond: (size - (points.at(-1)?.streams ?? 0)) / loadSeconds,
      };
      points.push(point);
      say(
        `${fmtInt(active)} streams: heapUsed ${fmtInt(h.heapUsed / 2 ** 20)} MiB → ${fmtInt(point.bytesPerStream)} B per stream (produced in ${produceSeconds.toFixed(0)} s, all checkpointed after ${loadSeconds.toFixed(0)} s)`,
      );
      if (snapshot && growth === undefined && baseSummary !== undefined) {
        const after = (await worker.heap(true)).summary ?? [];
        growth = diffHeapSummaries(baseSummary, after).slice(0, 15);
      }
    }
    say('');
    say(
      table(
        ['active streams', 'heapUsed', 'rss', 'B per stream', 'target', 'load time'],
        [
          [
            '0 (baseline)',
            `${fmtInt(base.heapUsed / 2 ** 20)} MiB`,
            `${fmtInt(base.rss / 2 ** 20)} MiB`,
            '',
            '',
            '',
          ],
          ...points.map((p) => [
            fmtInt(p.streams),
            `${fmtInt(p.heapUsed / 2 ** 20)} MiB`,
            `${fmtInt(p.rss / 2 ** 20)} MiB`,
            fmtInt(p.bytesPerStream),
            p.bytesPerStream <= HEAP_TARGET_BYTES
              ? `meets ≤ ${HEAP_TARGET_BYTES}`
              : `over ${HEAP_TARGET_BYTES}`,
            `${p.loadSeconds.toFixed(0)} s (${fmtInt(p.notificationsPerSecond)}/s)`,
          ]),
        ],
        new Set([0, 1, 2, 3, 5]),
      ),
    );
    if (growth !== undefined) {
      say(`\nheap growth by constructor, 0 → ${fmtInt(sizes[0] as number)} streams (self size; per stream)`);
      const n = sizes[0] as number;
      say(
        table(
          ['constructor', 'objects', 'bytes', 'B per stream'],
          growth.map((g) => [g.name, fmtInt(g.count), fmtInt(g.bytes), (g.bytes / n).toFixed(1)]),
          new Set([1, 2, 3]),
        ),
      );
    }
    const result: HeapResult = {
      partitions,
      baseline: { heapUsed: base.heapUsed, rss: base.rss },
      points,
      ...(growth === undefined ? {} : { growth }),
    };
    return result;
  } finally {
    await worker?.terminate();
    await run.close();
  }
}

runAsMain(import.meta.url, 'heap', runHeap);
