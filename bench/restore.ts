/**
 * Partition restore: how long a streams-stage worker takes to claim a partition and rebuild its engine
 * from PostgreSQL (the half of failover the worker controls; docs/benchmarks.md, "Partition failover").
 *
 * A private database gets N active streams of the StackTach trigger (etc/), written through the real
 * path: a `StreamTask` handles encoded stream-events records (one compute.instance.update per instance;
 * every fourth instance gets two more) and checkpoints them with `CheckpointStore.checkpoint`. Then, each
 * measured `--runs` times (median kept), per stream:
 *
 * - baseline: the plain read of the same rows through raw `pg` (`rowMode: 'array'`, no conversion): one
 *   row per event, the stream's columns joined;
 * - the claim's read before session 4 (the correlated `ARRAY(SELECT message_id …)` per stream, through
 *   slonik), kept here as an in-run reference;
 * - `CheckpointStore.claimPartition` alone (epoch bump + every stream row as the engine imports it);
 * - `StreamTask.claim` (claim + engine import + checkpoint collector), split into the store's read and the
 *   engine import when the store streams its rows;
 * - the first checkpoint after it (one tick record handled);
 * - the heap the restored task holds per stream (after a full GC; the streams' rows dropped).
 *
 * Wall time is what failover waits for; on a shared machine it also counts time spent waiting for a CPU,
 * so the CPU time of this process (the client side: driver, decoding, engine) and of the PostgreSQL
 * backend serving it (read from /proc: the server runs on this machine) are printed beside it.
 *
 *   node --import tsx bench/restore.ts                       # 10k streams
 *   node --import tsx bench/restore.ts --sizes 10000,100000 --runs 3
 *   node --import tsx bench/restore.ts --keep               # keep the database (its name is printed)
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pg from 'pg';
import { loadConfig } from '../src/config/load.js';
import { CheckpointStore, type ClaimedPartition } from '../src/db/checkpoint-store.js';
import { createDatabase, dropDatabase, withDatabaseName } from '../src/db/databases.js';
import { readMigrations, upgrade } from '../src/db/migrate.js';
import { createPool, type DatabasePool, sql } from '../src/db/pool.js';
import { EventTimeClock } from '../src/engine/clock.js';
import { encodeStreamEvent, encodeTick } from '../src/kafka/records.js';
import type { Event } from '../src/model/event.js';
import { parseDatetime } from '../src/timex/instant.js';
import type { TriggerDefinition } from '../src/triggers/types.js';
import { StreamTask, type TaskStore } from '../src/worker/stream-task.js';
import { BenchError, machine, machineLine, say, services, writeResults } from './lib/harness.js';
import { fmtInt, table } from './lib/output.js';

const CONFIG_FILE = new URL('../etc/winchester.yaml', import.meta.url).pathname;
const TOPIC = 'bench-restore';
const PARTITION = 0;

function argValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv[i + 1];
}

function sizesFrom(argv: readonly string[]): number[] {
  const raw = argValue(argv, 'sizes') ?? argValue(argv, 'streams') ?? '10000';
  const sizes = raw.split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n <= 0))
    throw new BenchError('--sizes needs positive integers, e.g. 10000,100000');
  return sizes.sort((a, b) => a - b);
}

/** A small deterministic PRNG (mulberry32): the same workload every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uuid(rand: () => number): string {
  const h = () =>
    Math.floor(rand() * 0x1_0000_0000)
      .toString(16)
      .padStart(8, '0');
  const a = h() + h() + h() + h();
  return `${a.slice(0, 8)}-${a.slice(8, 12)}-4${a.slice(13, 16)}-a${a.slice(17, 20)}-${a.slice(20, 32)}`;
}

function gcFunction(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function heapAfterGc(gc: () => void): number {
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage().heapUsed;
}

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** The stream-events records of `count` streams (the first `done` already written), as the router encodes them. */
function* records(
  def: TriggerDefinition,
  from: number,
  to: number,
): Generator<{ value: string; events: number }> {
  const day = parseDatetime('2026-11-20T00:00:00Z');
  for (let i = from; i < to; i++) {
    const rand = prng(i + 1);
    const instance = uuid(rand);
    const extra = i % 4 === 0 ? 2 : 0;
    for (let k = 0; k <= extra; k++) {
      const ts = day + i * 10 + k;
      const event: Event = {
        message_id: uuid(rand),
        event_type: 'compute.instance.update',
        timestamp: ts,
        traits: {
          instance_id: { type: 'text', value: instance },
          tenant_id: { type: 'text', value: 'tenant-1' },
          state: { type: 'text', value: 'active' },
        },
      };
      const m = def.match(event, ts);
      if (!m.matched) throw new BenchError('the workload event does not match the StackTach trigger');
      yield {
        value: encodeStreamEvent({
          trigger: def.name,
          key: m.key,
          distinguishing: m.distinguishing,
          event,
          watermark: ts,
        }),
        events: 1,
      };
    }
  }
}

function taskOptions(store: TaskStore, triggers: readonly TriggerDefinition[]) {
  return {
    store,
    topic: TOPIC,
    partition: PARTITION,
    triggers,
    clock: new EventTimeClock(),
    checkpointRecords: Number.MAX_SAFE_INTEGER,
    checkpointMs: Number.MAX_SAFE_INTEGER,
  };
}

/** Writes streams `from`..`to` through a StreamTask and real checkpoints; returns the events written. */
async function load(
  store: CheckpointStore,
  triggers: readonly TriggerDefinition[],
  from: number,
  to: number,
): Promise<number> {
  const def = triggers[0] as TriggerDefinition;
  const task = await StreamTask.claim(taskOptions(store, triggers));
  let offset = task.nextOffset;
  let events = 0;
  let sinceCheckpoint = 0;
  for (const r of records(def, from, to)) {
    task.handle(offset++, r.value);
    events += r.events;
    if (++sinceCheckpoint >= 5000) {
      await task.checkpoint();
      sinceCheckpoint = 0;
    }
  }
  await task.checkpoint();
  return events;
}

interface Row {
  phase: string;
  /** Median wall seconds over the runs. */
  seconds: number;
  /** Median CPU seconds of this process (the client side: driver, decoding, engine). */
  cpuSeconds: number;
  /** Median CPU seconds of the PostgreSQL backend serving it (NaN when /proc does not show it). */
  serverSeconds: number;
  note: string;
}

/** The read of the claim before session 4, through slonik (the reference the new read is compared to). */
async function oldClaimRead(pool: DatabasePool): Promise<number> {
  const rows = await pool.any(sql.unsafe`
    SELECT s.id, s.seq, s.trigger, s.key, s.first_event, s.last_event, s.expire_at, s.fire_at, s.version,
      s.criterion_counts,
      ARRAY(SELECT e.message_id FROM stream_events e WHERE e.stream_id = s.id ORDER BY e.ord) AS message_ids
    FROM streams s
    WHERE s.topic = ${TOPIC} AND s.partition = ${PARTITION} AND s.state = 'active'
    ORDER BY s.seq`);
  return rows.length;
}

/** The baseline: every (stream, event) row of the partition's active streams, raw, as arrays of text. */
async function rawRead(client: pg.Client): Promise<number> {
  const result = await client.query({
    text: `SELECT s.id, s.seq, s.trigger, s.key, s.first_event, s.last_event, s.expire_at, s.fire_at,
        s.version, s.criterion_counts, e.message_id
      FROM streams s JOIN stream_events e ON e.stream_id = s.id
      WHERE s.topic = $1 AND s.partition = $2 AND s.state = 'active'`,
    values: [TOPIC, PARTITION],
    rowMode: 'array',
  });
  return result.rows.length;
}

/**
 * CPU seconds (user + system) a PostgreSQL backend has used, from /proc (the server runs on this
 * machine); NaN when it cannot be read. Clock ticks of 10 ms: fine for reads of a second or so.
 */
function backendCpu(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** The backends whose CPU time is counted as the server's (the bench pool's single one, the raw client's). */
const backends: number[] = [];
const serverCpu = () => backends.reduce((sum, pid) => sum + backendCpu(pid), 0);

/** Wall, client CPU (user + system of this process) and server CPU seconds since a start mark. */
interface Mark {
  wall: bigint;
  cpu: NodeJS.CpuUsage;
  server: number;
}
interface Times {
  wall: number;
  cpu: number;
  server: number;
}
const mark = (): Mark => ({ wall: process.hrtime.bigint(), cpu: process.cpuUsage(), server: serverCpu() });
function since(m: Mark): Times {
  const c = process.cpuUsage(m.cpu);
  return { wall: seconds(m.wall), cpu: (c.user + c.system) / 1e6, server: serverCpu() - m.server };
}

/** One claim with every row returned at once (what other callers of the store get). */
async function timeClaim(store: CheckpointStore, streams: number): Promise<Times> {
  const m = mark();
  const claim: ClaimedPartition = await store.claimPartition(TOPIC, PARTITION);
  const t = since(m);
  if (claim.liveStreams.length !== streams)
    throw new BenchError(`claim returned ${claim.liveStreams.length} streams, expected ${streams}`);
  return t;
}

async function measure(
  pool: DatabasePool,
  client: pg.Client,
  store: CheckpointStore,
  triggers: readonly TriggerDefinition[],
  streams: number,
  runs: number,
  gc: () => void,
): Promise<{ rows: Row[]; bytesPerStream: number }> {
  const samples = new Map<string, { wall: number[]; cpu: number[]; server: number[] }>();
  const note = new Map<string, string>();
  const sample = (phase: string, t: Times, what = '') => {
    const list = samples.get(phase) ?? { wall: [], cpu: [], server: [] };
    list.wall.push(t.wall);
    list.cpu.push(t.cpu);
    list.server.push(t.server);
    samples.set(phase, list);
    if (what !== '') note.set(phase, what);
  };
  let bytesPerStream = Number.NaN;
  // Measured once, before any task exists: a suspended async function keeps stale registers, so a
  // baseline taken inside the loop could still reach the previous run's task.
  const before = heapAfterGc(gc);
  for (let run = 0; run < runs; run++) {
    let m = mark();
    const raw = await rawRead(client);
    sample('baseline: raw pg SELECT … JOIN stream_events (arrays of text)', since(m), `${fmtInt(raw)} rows`);

    m = mark();
    const old = await oldClaimRead(pool);
    if (old !== streams) throw new BenchError(`expected ${streams} active streams, read ${old}`);
    sample('reference: session-3 claim SELECT via slonik (no conversion)', since(m));

    sample('CheckpointStore.claimPartition (all rows materialised)', await timeClaim(store, streams));

    // What the worker does: the store may hand rows to the engine as it reads them (timed apart; the
    // sink's time includes its yield to the event loop).
    const inSink = { wall: 0, cpu: 0, server: 0 };
    let imported = 0;
    const timing: TaskStore = {
      claimPartition: (topic, partition, sink) =>
        store.claimPartition(
          topic,
          partition,
          sink === undefined
            ? undefined
            : async (rows) => {
                const t = mark();
                await sink(rows);
                const d = since(t);
                inSink.wall += d.wall;
                inSink.cpu += d.cpu;
                inSink.server += d.server;
                imported += rows.length;
              },
        ),
      checkpoint: (cp) => store.checkpoint(cp),
      loadStreamEvents: (id) => store.loadStreamEvents(id),
      loadEventsOfStreams: (ids) => store.loadEventsOfStreams(ids),
    };
    m = mark();
    const task = await StreamTask.claim(taskOptions(timing, triggers));
    const restore = since(m);
    sample('StreamTask.claim (claim + engine + collector)', restore);
    if (imported > 0) {
      sample('  of which: read rows (SQL + decode)', {
        wall: restore.wall - inSink.wall,
        cpu: restore.cpu - inSink.cpu,
        server: restore.server - inSink.server,
      });
      sample('  of which: engine import (per chunk)', inSink);
    }
    const active = [...task.counts.byTrigger.values()].reduce((n, t) => n + t.active, 0);
    if (active !== streams) throw new BenchError(`the task restored ${active} streams, expected ${streams}`);
    if (run === 0) bytesPerStream = (heapAfterGc(gc) - before) / streams;

    m = mark();
    task.handle(task.nextOffset, encodeTick(parseDatetime('2026-11-20T00:00:00Z')));
    await task.checkpoint();
    sample('first checkpoint after restore (one tick)', since(m));
  }
  const rows = [...samples].map(([phase, list]) => ({
    phase,
    seconds: median(list.wall),
    cpuSeconds: median(list.cpu),
    serverSeconds: median(list.server),
    note: note.get(phase) ?? '',
  }));
  return { rows, bytesPerStream };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const sizes = sizesFrom(argv);
  const runsArg = Number(argValue(argv, 'runs') ?? 3);
  if (!Number.isInteger(runsArg) || runsArg < 1) throw new BenchError('--runs needs a positive integer');
  const gc = gcFunction();
  const config = await loadConfig(CONFIG_FILE, { env: {} });
  const triggers = [...config.triggers];
  if (triggers.length === 0) throw new BenchError(`${CONFIG_FILE} configures no triggers`);
  const { databaseUrl } = services();
  say(`\n== partition restore (${sizes.map(fmtInt).join(', ')} streams, median of ${runsArg} runs)`);
  say(machineLine());

  const admin = await createPool(databaseUrl, { maximumPoolSize: 1 });
  const name = `bench_restore_${Date.now().toString(36)}`;
  await createDatabase(admin, name);
  const url = withDatabaseName(databaseUrl, name);
  // One connection that stays open: its backend's CPU time is the server's share of each phase.
  const pool = await createPool(url, {
    maximumPoolSize: 1,
    statementTimeoutMs: 600_000,
    idleTimeoutMs: 3_600_000,
  });
  const client = new pg.Client({ connectionString: url });
  const results: {
    streams: number;
    events: number;
    loadSeconds: number;
    rows: Row[];
    bytesPerStream: number;
  }[] = [];
  try {
    await upgrade(pool, await readMigrations());
    await client.connect();
    backends.push(
      Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid),
      Number(await pool.oneFirst(sql.unsafe`SELECT pg_backend_pid()`)),
    );
    const store = new CheckpointStore(pool);
    let written = 0;
    let events = 0;
    for (const n of sizes) {
      const t0 = process.hrtime.bigint();
      events += await load(store, triggers, written, n);
      written = n;
      await pool.query(sql.unsafe`ANALYZE`);
      const loadSeconds = seconds(t0);
      say(`\n${fmtInt(n)} active streams, ${fmtInt(events)} events (written in ${loadSeconds.toFixed(1)} s)`);
      const m = await measure(pool, client, store, triggers, n, runsArg, gc);
      say(
        table(
          ['phase', 'wall', 'wall µs/stream', 'client CPU µs/stream', 'server CPU µs/stream', 'note'],
          m.rows.map((r) => [
            r.phase,
            `${(r.seconds * 1000).toFixed(0)} ms`,
            ((r.seconds * 1e6) / n).toFixed(2),
            ((r.cpuSeconds * 1e6) / n).toFixed(2),
            Number.isFinite(r.serverSeconds) ? ((r.serverSeconds * 1e6) / n).toFixed(2) : '–',
            r.note,
          ]),
          new Set([1, 2, 3, 4]),
        ),
      );
      say(`heap held by the restored task: ${m.bytesPerStream.toFixed(0)} B per stream`);
      results.push({ streams: n, events, loadSeconds, ...m });
    }
    say(`\nresults: ${writeResults('restore', { machine: machine(), results })}`);
  } finally {
    await client.end().catch(() => undefined);
    await pool.end();
    if (argv.includes('--keep')) say(`kept the database ${name}`);
    else await dropDatabase(admin, name).catch(() => undefined);
    await admin.end();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`restore bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
