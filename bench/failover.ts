/**
 * Partition failover time of the streams stage. Three trigger-worker processes run the streams stage
 * (bench/worker-child.ts, the real TriggerWorker) and one more runs the route stage; the workload opens
 * 2 × S streams that stay open (one compute.instance.update per distinct instance, wall clock), so each
 * of two streams workers holds about S of them. Then, in turn:
 *
 *  1. SIGKILL of worker A (session_timeout as configured, default 10 s); B survives;
 *  2. worker C joins (session_timeout `--short-session`, default 3 s) and takes half; then SIGTERM of B:
 *     a graceful handover to C;
 *  3. worker D joins (short session) and takes half; SIGKILL of D; C survives.
 *
 * For each, the clock starts at the kill (or the SIGTERM). Right after it, one probe record (a time tick,
 * the record the route stage sends every second, encoded with the record module's public encoder) is
 * produced to every partition the victim held; a partition is back when partition_checkpoints shows the
 * survivor's checkpoint past its probe (so the survivor has claimed the partition, restored its streams
 * from PostgreSQL, handled a record produced after the kill and committed the checkpoint). The split
 * comes from the survivor's consumer group events: detection = kill → the survivor's REBALANCING (the
 * coordinator's session timeout, then the survivor's next heartbeat); rebalance = → its GROUP_JOIN with
 * the victim's partitions; claim + restore + first record = → the last probe checkpointed.
 *
 *   npm run bench -- --only failover                  # S = 100,000
 *   node --import tsx bench/failover.ts --streams 20000 --short-session 3
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeTick } from '../src/kafka/records.js';
import { nowInstant } from '../src/timex/instant.js';
import {
  BenchError,
  type BenchRun,
  checkpointOffsets,
  flag,
  highWatermarks,
  machineLine,
  numberArg,
  openRun,
  openStreams,
  runAsMain,
  say,
  WorkerProcess,
} from './lib/harness.js';
import { fmtInt, fmtS, table } from './lib/output.js';
import { parseMetricSum } from './lib/stats.js';
import type { ChildMessage } from './worker-child.js';

export const FAILOVER_TARGET_SECONDS = 5;

export interface FailoverCase {
  name: string;
  signal: 'SIGKILL' | 'SIGTERM';
  victimSessionTimeout: number;
  survivorSessionTimeout: number;
  victimPartitions: number[];
  victimStreams: number;
  /** Seconds from the signal. */
  victimExited: number;
  detected: number;
  rejoined: number;
  /** The last of the victim's partitions whose probe the survivor checkpointed. */
  recovered: number;
  perPartition: { partition: number; seconds: number }[];
  survivorStreamsAfter: number;
}

export interface FailoverResult {
  partitions: number;
  streams: number;
  loadSeconds: number;
  brokerMinSessionTimeoutNote: string;
  cases: FailoverCase[];
}

/** Active streams of a worker (its winchester_streams_active gauge). */
async function activeStreams(w: WorkerProcess): Promise<number> {
  return parseMetricSum(await w.metrics(), 'winchester_streams_active');
}

/**
 * Waits until the live streams workers together hold every partition (their last joins) and all `streams`
 * active streams (their winchester_streams_active), every partition's checkpoint has passed the
 * stream-events high watermark read once that holds (so each owner has restored and handled new records),
 * and no live worker has seen a rebalance or a join for 5 s (a group that is still churning would blur the
 * next measurement).
 */
async function settle(
  run: BenchRun,
  live: WorkerProcess[],
  partitions: number,
  streams: number,
  timeoutMs: number,
): Promise<void> {
  const group = `${run.clientId}.streams`;
  const t0 = Date.now();
  const check = (ok: boolean, what: string) => {
    if (!ok && Date.now() - t0 > timeoutMs)
      throw new BenchError(`the streams group did not settle within ${timeoutMs / 1000} s (${what})`);
    return ok;
  };
  for (;;) {
    await sleep(500);
    const held = live.flatMap((w) => w.partitions(group));
    if (
      !check(
        held.length === partitions &&
          new Set(held).size === partitions &&
          live.every((w) => w.partitions(group).length > 0),
        `held: ${held.join(',')}`,
      )
    )
      continue;
    const lastEvent = Math.max(
      ...live.flatMap((w) =>
        w.events
          .filter((e) => (e.type === 'join' || e.type === 'rebalancing') && e.group === group)
          .map((e) => e.at),
      ),
    );
    if (!check(Date.now() - lastEvent >= 5000, 'rebalancing')) continue;
    let active = 0;
    for (const w of live) active += await activeStreams(w);
    if (!check(active === streams, `${active} of ${streams} streams active`)) continue;
    const target = await highWatermarks(run.admin, run.topics.streamEvents);
    const at = await checkpointOffsets(run.pool, run.topics.streamEvents);
    if (
      !check(
        [...target].every(([p, end]) => (at.get(p) ?? 0n) >= end),
        'checkpoints behind',
      )
    )
      continue;
    return;
  }
}

async function failoverCase(
  run: BenchRun,
  name: string,
  victim: WorkerProcess,
  survivor: WorkerProcess,
  signal: 'SIGKILL' | 'SIGTERM',
  sessions: { victim: number; survivor: number },
  timeoutMs: number,
): Promise<FailoverCase> {
  const group = `${run.clientId}.streams`;
  const victimPartitions = victim.partitions(group);
  const victimStreams = await activeStreams(victim);
  const producer = run.kafka.producer();
  await producer.connect();
  try {
    const seen = survivor.events.length;
    const t0 = Date.now();
    victim.child.kill(signal);
    // One probe record per partition the victim held, produced right after the signal.
    const probes = new Map<number, bigint>();
    for (const p of victimPartitions) {
      const [meta] = await producer.send({
        topic: run.topics.streamEvents,
        acks: -1,
        messages: [{ partition: p, value: encodeTick(nowInstant()) }],
      });
      probes.set(p, BigInt(meta?.baseOffset ?? '0'));
    }
    const done = new Map<number, number>();
    while (done.size < victimPartitions.length) {
      if (Date.now() - t0 > timeoutMs)
        throw new BenchError(
          `${name}: partitions ${victimPartitions.filter((p) => !done.has(p)).join(',')} did not recover within ${timeoutMs / 1000} s`,
        );
      const at = await checkpointOffsets(run.pool, run.topics.streamEvents);
      const now = Date.now();
      for (const [p, probe] of probes) if (!done.has(p) && (at.get(p) ?? 0n) > probe) done.set(p, now);
      await sleep(25);
    }
    await victim.exited;
    const after = survivor.events.slice(seen);
    const rebalancing = after.find(
      (e): e is Extract<ChildMessage, { type: 'rebalancing' }> =>
        e.type === 'rebalancing' && e.group === group,
    );
    const join = after.find(
      (e): e is Extract<ChildMessage, { type: 'join' }> =>
        e.type === 'join' && e.group === group && victimPartitions.every((p) => e.partitions.includes(p)),
    );
    const s = (at: number | undefined) => (at === undefined ? Number.NaN : (at - t0) / 1000);
    const recoveredAt = Math.max(...done.values());
    return {
      name,
      signal,
      victimSessionTimeout: sessions.victim,
      survivorSessionTimeout: sessions.survivor,
      victimPartitions,
      victimStreams,
      victimExited: s(victim.exitedAt),
      // kafkajs reports REBALANCING only when a heartbeat learns it; a join without one means the survivor
      // learned it from another request: then detection is taken at the join.
      detected: s(rebalancing?.at ?? join?.at),
      rejoined: s(join?.at),
      recovered: s(recoveredAt),
      perPartition: [...done]
        .sort((a, b) => a[0] - b[0])
        .map(([partition, at]) => ({ partition, seconds: (at - t0) / 1000 })),
      survivorStreamsAfter: await activeStreams(survivor),
    };
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

export async function runFailover(argv: readonly string[]): Promise<FailoverResult> {
  const quick = flag(argv, 'quick');
  const perWorker = numberArg(argv, 'streams', quick ? 10_000 : 100_000);
  const partitions = numberArg(argv, 'partitions', 4);
  const shortSession = numberArg(argv, 'short-session', 3);
  const stallMs = numberArg(argv, 'stall-seconds', 180) * 1000;
  const timeoutMs = numberArg(argv, 'failover-timeout-seconds', 180) * 1000;
  say(`\n== partition failover (${fmtInt(perWorker)} active streams per worker, ${partitions} partitions)`);
  say(machineLine());
  const run = await openRun('failover', partitions, { WINCHESTER_CLOCK_MODE: 'wall' });
  const configured = Number(run.env.WINCHESTER_TRIGGER_WORKER_SESSION_TIMEOUT ?? 10);
  const shortEnv = { ...run.env, WINCHESTER_TRIGGER_WORKER_SESSION_TIMEOUT: String(shortSession) };
  const workers: WorkerProcess[] = [];
  const start = async (name: string, stages: 'route' | 'streams', env: NodeJS.ProcessEnv) => {
    const w = await WorkerProcess.start(name, stages, env);
    workers.push(w);
    return w;
  };
  try {
    await start('route', 'route', run.env);
    const a = await start('A', 'streams', run.env);
    const b = await start('B', 'streams', run.env);
    await settle(run, [a, b], partitions, 0, 120_000);
    const total = 2 * perWorker;
    const { loadSeconds } = await openStreams(run, total, partitions, stallMs);
    const held = [await activeStreams(a), await activeStreams(b)];
    say(
      `loaded ${fmtInt(total)} streams in ${loadSeconds.toFixed(0)} s: A holds ${fmtInt(held[0] ?? 0)} (partitions ${a.partitions(`${run.clientId}.streams`).join(',')}), B ${fmtInt(held[1] ?? 0)}`,
    );
    if ((held[0] ?? 0) + (held[1] ?? 0) !== total)
      throw new BenchError(`expected ${total} active streams, the workers hold ${held.join(' + ')}`);
    await settle(run, [a, b], partitions, total, timeoutMs);

    const cases: FailoverCase[] = [];
    /** Measures one case (the victim's partitions move to the survivor) and reports it. */
    const measure = async (
      name: string,
      victim: WorkerProcess,
      survivor: WorkerProcess,
      signal: FailoverCase['signal'],
      sessions: { victim: number; survivor: number },
    ) => {
      const x = await failoverCase(run, name, victim, survivor, signal, sessions, timeoutMs);
      cases.push(x);
      say(
        `${x.name}: ${fmtInt(x.victimStreams)} streams on partitions ${x.victimPartitions.join(',')} back after ${fmtS(x.recovered)} (detected ${fmtS(x.detected)}, rejoined ${fmtS(x.rejoined)}; victim exited at ${fmtS(x.victimExited)})`,
      );
    };
    await measure(`SIGKILL, session_timeout ${configured} s`, a, b, 'SIGKILL', {
      victim: configured,
      survivor: configured,
    });

    const c = await start('C', 'streams', shortEnv);
    await settle(run, [b, c], partitions, total, timeoutMs);
    await measure('SIGTERM (graceful handover)', b, c, 'SIGTERM', {
      victim: configured,
      survivor: shortSession,
    });

    const d = await start('D', 'streams', shortEnv);
    await settle(run, [c, d], partitions, total, timeoutMs);
    await measure(`SIGKILL, session_timeout ${shortSession} s`, d, c, 'SIGKILL', {
      victim: shortSession,
      survivor: shortSession,
    });

    say('');
    say(
      table(
        ['case', 'streams moved', 'detection', 'rebalance', 'claim+restore+1st record', 'total', 'target'],
        cases.map((x) => [
          x.name,
          fmtInt(x.victimStreams),
          fmtS(x.detected),
          fmtS(x.rejoined - x.detected),
          fmtS(x.recovered - x.rejoined),
          fmtS(x.recovered),
          x.recovered <= FAILOVER_TARGET_SECONDS
            ? `meets ≤ ${FAILOVER_TARGET_SECONDS} s`
            : `over ${FAILOVER_TARGET_SECONDS} s`,
        ]),
        new Set([1, 2, 3, 4, 5]),
      ),
    );
    return {
      partitions,
      streams: total,
      loadSeconds,
      brokerMinSessionTimeoutNote:
        "Kafka refuses a session timeout below the broker's group.min.session.timeout.ms (Kafka default 6000 ms; 1000 ms on the development broker)",
      cases,
    };
  } finally {
    for (const w of workers.reverse()) {
      if (w.child.exitCode === null && w.child.signalCode === null) await w.terminate();
    }
    await run.close();
  }
}

runAsMain(import.meta.url, 'failover', runFailover);
