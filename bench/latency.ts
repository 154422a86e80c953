/**
 * Fire latency in wall-clock mode, at about half of the maximum sustainable rate.
 *
 * A trigger worker (both stages, clock.mode wall, defaults otherwise; a process of its own) runs over a
 * notigen workload of the StackTach usage audit: per instance and day, the lifecycle notifications and
 * the end-of-day compute.instance.exists that meets the trigger's fire criterion. The workload is made
 * of one-day notigen runs dated yesterday (so no stream expires during the run: expiration is
 * `$last + 2d`), one after the other with their own seeds and instances, so fires happen all along.
 *
 *  1. Maximum rate: `--max-rate <n>` when given; otherwise a probe: a first one-day run produced as fast
 *     as possible, its rate taken from the first produce to every stream-events partition checkpointed.
 *  2. The measure: the workload produced at `--load` (default 0.5) × that rate, paced by a rate limiter
 *     (bench/lib/pacer.ts) and flushed every tick, for `--seconds` seconds.
 *  3. Per fired batch: the wall time from the send of the notification that completed the stream (the
 *     last-produced event of the batch, which is its daily compute.instance.exists; checked) to the batch
 *     record being read from the batches topic by a consumer in this process. Beside it, the worker's own
 *     winchester_fire_latency_seconds histogram (the exposition /metrics serves; its difference over the
 *     measured phase), which runs from the streams stage handling that record to the batch publication
 *     being acknowledged.
 *
 *   npm run bench -- --only latency
 *   node --import tsx bench/latency.ts --seconds 60 --load 0.5 [--max-rate 1200]
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { judgeLine } from '../src/kafka/notification-key.js';
import { generateNotifications } from '../src/notigen/index.js';
import {
  BenchError,
  flag,
  machineLine,
  numberArg,
  openBenchProducer,
  openRun,
  runAsMain,
  say,
  WorkerProcess,
  waitAllCheckpointed,
} from './lib/harness.js';
import { fmtInt, fmtMs, table } from './lib/output.js';
import { Pacer } from './lib/pacer.js';
import {
  type Bucket,
  histogramQuantile,
  type ParsedHistogram,
  parseHistogram,
  type Summary,
  summarize,
} from './lib/stats.js';

export const LATENCY_TARGET_P99_SECONDS = 1;

export interface LatencyResult {
  partitions: number;
  maxRate: { perSecond: number; source: 'given' | 'probe'; notifications?: number; seconds?: number };
  load: number;
  targetRate: number;
  achievedRate: number;
  notifications: number;
  seconds: number;
  /** Produce → batch read, seconds. */
  endToEnd: Summary;
  /** Batches whose last-produced event was not a compute.instance.exists. */
  notCompletedByExists: number;
  byReference: number;
  /** winchester_fire_latency_seconds over the measured phase. */
  workerHistogram: { count: number; mean: number; p50: number; p99: number };
}

/** Notifications of consecutive one-day notigen runs dated yesterday, keyed; `seed` picks the first run. */
function* workload(
  seed: number,
  instancesPerDay: number,
): Generator<{ key: string | null; text: string; id: string; type: string }> {
  const start = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  for (let s = seed; ; s++) {
    for (const n of generateNotifications({ seed: s, instances: instancesPerDay, days: 1, start })) {
      const text = JSON.stringify(n);
      const verdict = judgeLine(text);
      if (!verdict.ok) throw new Error(`notigen produced an unkeyable notification: ${verdict.detail}`);
      yield { key: verdict.key, text, id: String(n.message_id), type: String(n.event_type) };
    }
  }
}

function histogramDelta(before: ParsedHistogram | null, after: ParsedHistogram | null): ParsedHistogram {
  if (after === null) return { buckets: [], sum: 0, count: 0 };
  const base = new Map((before?.buckets ?? []).map((b) => [b.le, b.count]));
  const buckets: Bucket[] = after.buckets.map((b) => ({ le: b.le, count: b.count - (base.get(b.le) ?? 0) }));
  return { buckets, sum: after.sum - (before?.sum ?? 0), count: after.count - (before?.count ?? 0) };
}

export async function runLatency(argv: readonly string[]): Promise<LatencyResult> {
  const quick = flag(argv, 'quick');
  const partitions = numberArg(argv, 'partitions', 4);
  const seconds = numberArg(argv, 'seconds', quick ? 20 : 60);
  const load = numberArg(argv, 'load', 0.5);
  const given = argv.includes('--max-rate') ? numberArg(argv, 'max-rate', 1) : undefined;
  const probeSize = numberArg(argv, 'probe-notifications', quick ? 5_000 : 20_000);
  const stallMs = numberArg(argv, 'stall-seconds', 180) * 1000;
  say(`\n== fire latency (wall clock, ${load * 100}% of the maximum rate, ${seconds} s)`);
  say(machineLine());
  const run = await openRun('latency', partitions, { WINCHESTER_CLOCK_MODE: 'wall' });
  let worker: WorkerProcess | undefined;
  const consumer = run.kafka.consumer({ groupId: `${run.clientId}-latency`, maxWaitTimeInMs: 100 });
  try {
    worker = await WorkerProcess.start('latency', 'all', run.env);
    const sendTimes = new Map<string, { at: number; type: string }>();
    const samples: number[] = [];
    let notByExists = 0;
    let byReference = 0;
    let measuring = false;
    await consumer.connect();
    await consumer.subscribe({ topics: [run.topics.batches], fromBeginning: true });
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const seenAt = Date.now();
        for (const m of batch.messages) {
          if (m.value === null) continue;
          const b = JSON.parse(m.value.toString('utf8')) as {
            kind?: string;
            ref?: string;
            events?: { message_id?: string }[];
          };
          if (b.ref !== undefined) {
            if (measuring) byReference++;
            continue;
          }
          if (b.kind !== 'fire' || b.events === undefined) continue;
          let last: { at: number; type: string } | undefined;
          for (const e of b.events) {
            const sent = e.message_id === undefined ? undefined : sendTimes.get(e.message_id);
            if (sent !== undefined && (last === undefined || sent.at >= last.at)) last = sent;
          }
          // Batches of the probe phase have no send time in the map.
          if (last === undefined) continue;
          if (last.type !== 'compute.instance.exists') notByExists++;
          samples.push((seenAt - last.at) / 1000);
        }
      },
    });
    await Promise.race([
      joined,
      sleep(60_000).then(() =>
        Promise.reject(new BenchError('the batches consumer did not join within 60 s')),
      ),
    ]);

    const producer = await openBenchProducer(run, partitions);
    try {
      // 1. The maximum rate.
      let maxRate: LatencyResult['maxRate'];
      if (given !== undefined) {
        maxRate = { perSecond: given, source: 'given' };
      } else {
        const probe = workload(1_000_000, Math.max(10, Math.ceil(probeSize / 60)));
        const t0 = Date.now();
        for (let i = 0; i < probeSize; i++) {
          const n = probe.next().value as { key: string | null; text: string };
          const wait = producer.add(n.key, n.text);
          if (wait !== undefined) await wait;
        }
        await producer.flush();
        await waitAllCheckpointed(run, stallMs);
        const s = (Date.now() - t0) / 1000;
        maxRate = { perSecond: probeSize / s, source: 'probe', notifications: probeSize, seconds: s };
        say(
          `maximum rate (probe, ${fmtInt(probeSize)} notifications unpaced): ${fmtInt(maxRate.perSecond)}/s`,
        );
      }
      const targetRate = maxRate.perSecond * load;
      const total = Math.ceil(targetRate * seconds);
      // About one notigen day-run every 10 s, so fires come all along the run.
      const perDay = Math.max(5, Math.ceil((targetRate * 10) / 60));
      const source = workload(1, perDay);
      await sleep(2000);
      const before = parseHistogram(await worker.metrics(), 'winchester_fire_latency_seconds');

      // 2. Paced production; every notification's send time is kept by message id.
      measuring = true;
      const t0 = Date.now();
      const pacer = new Pacer(targetRate, t0, Math.max(1, Math.ceil(targetRate / 10)));
      let sent = 0;
      while (sent < total) {
        const now = Date.now();
        const n = Math.min(pacer.take(now), total - sent);
        sent += n;
        for (let i = 0; i < n; i++) {
          const x = source.next().value as { key: string | null; text: string; id: string; type: string };
          sendTimes.set(x.id, { at: now, type: x.type });
          const wait = producer.add(x.key, x.text);
          if (wait !== undefined) await wait;
        }
        if (n > 0) await producer.flush();
        await sleep(Math.max(1, Math.min(20, pacer.msUntilNext(Date.now()))));
      }
      const produceSeconds = (Date.now() - t0) / 1000;
      const achievedRate = sent / produceSeconds;
      await waitAllCheckpointed(run, stallMs);
      // The last checkpoints' batches are published after commit: let them arrive.
      let lastCount = -1;
      while (samples.length !== lastCount) {
        lastCount = samples.length;
        await sleep(3000);
      }
      measuring = false;
      const after = parseHistogram(await worker.metrics(), 'winchester_fire_latency_seconds');
      const h = histogramDelta(before, after);
      const endToEnd = summarize(samples);
      const result: LatencyResult = {
        partitions,
        maxRate,
        load,
        targetRate,
        achievedRate,
        notifications: sent,
        seconds: produceSeconds,
        endToEnd,
        notCompletedByExists: notByExists,
        byReference,
        workerHistogram: {
          count: h.count,
          mean: h.count === 0 ? Number.NaN : h.sum / h.count,
          p50: histogramQuantile(0.5, h.buckets),
          p99: histogramQuantile(0.99, h.buckets),
        },
      };
      say(
        `produced ${fmtInt(sent)} notifications at ${fmtInt(achievedRate)}/s (target ${fmtInt(targetRate)}/s) in ${produceSeconds.toFixed(0)} s; ${fmtInt(endToEnd.count)} fired batches read`,
      );
      say('');
      say(
        table(
          ['measure', 'batches', 'p50', 'p90', 'p99', 'max', 'target'],
          [
            [
              'notification sent → batch read (this process)',
              fmtInt(endToEnd.count),
              fmtMs(endToEnd.p50),
              fmtMs(endToEnd.p90),
              fmtMs(endToEnd.p99),
              fmtMs(endToEnd.max),
              endToEnd.p99 <= LATENCY_TARGET_P99_SECONDS ? 'p99 meets ≤ 1 s' : 'p99 over 1 s',
            ],
            [
              'worker: winchester_fire_latency_seconds',
              fmtInt(h.count),
              fmtMs(result.workerHistogram.p50),
              '',
              fmtMs(result.workerHistogram.p99),
              '',
              '(bucket interpolation)',
            ],
          ],
          new Set([1, 2, 3, 4, 5]),
        ),
      );
      if (notByExists > 0)
        say(`note: ${notByExists} batches were completed by another event than the daily exists`);
      return result;
    } finally {
      await producer.close();
    }
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await worker?.terminate();
    await run.close();
  }
}

runAsMain(import.meta.url, 'latency', runLatency);
