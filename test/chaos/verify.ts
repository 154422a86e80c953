/**
 * What a chaos run is judged by, read after the workers stopped:
 *
 * - the batches the trigger workers published (every record of the batches topic, by-reference ones
 *   resolved through the outbox) must be, as a set, exactly what `winchester replay` prints for the input;
 * - the recording handler's effects (one file per batch id) must be exactly one per batch of
 *   `winchester replay --run-pipelines`, with the same events the pipeline saw there (the usage verdicts
 *   included): nothing lost, nothing counted twice;
 * - every commit() call is in the handler's call log; a batch whose commit() ran more than once must owe
 *   it to the documented window (its earlier caller was SIGKILLed by the suite before it recorded the
 *   batch complete);
 * - the database holds no stream (all completed and purged) and a completion mark per batch, and nothing
 *   went to the dead-letter topic.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PipelineStore } from '../../src/db/pipeline-store.js';
import { type DatabasePool, sql } from '../../src/db/pool.js';
import { decodeBatchMessage } from '../../src/kafka/records.js';
import type { Kafka } from '../../src/kafka/types.js';
import { asReplayLine, batchSummary, canonical } from '../helpers/batches.js';
import { runCli } from '../helpers/cli.js';

/** One batch as `winchester replay --run-pipelines` printed it. */
export interface ExpectedBatch {
  /** The replay line without its `run` field, canonical (comparable with a published batch). */
  readonly line: string;
  /** kind, trigger and every message id the recording handler must see (stream events + verdicts). */
  readonly fingerprint: string;
}

/** What replay says the run must produce. */
export async function replayExpectations(
  configFile: string,
  inputFile: string,
  until: string,
  env: NodeJS.ProcessEnv,
): Promise<ExpectedBatch[]> {
  const r = await runCli(['replay', '-q', '--run-pipelines', '-c', configFile, '--until', until, inputFile], {
    env,
  });
  if (r.code !== 0) throw new Error(`winchester replay exited ${r.code}: ${r.stderr}`);
  const out: ExpectedBatch[] = [];
  for (const text of r.stdoutLines()) {
    const line = JSON.parse(text) as Record<string, unknown> & {
      pipeline: string | null;
      kind: string;
      trigger: string;
      events: { message_id: string }[];
      run: { ok: boolean; emitted?: { message_id: string }[]; error?: string } | null;
    };
    if (line.pipeline === null) continue;
    if (line.run === null || !line.run.ok) {
      throw new Error(
        `replay: the pipeline of a batch failed, the workload is unusable: ${text.slice(0, 400)}`,
      );
    }
    const ids = [
      ...line.events.map((e) => e.message_id),
      ...(line.run.emitted ?? []).map((e) => e.message_id),
    ];
    const { run: _run, ...batch } = line;
    out.push({
      line: canonical(JSON.stringify(batch)),
      fingerprint: fingerprintOf(line.kind, line.trigger, ids),
    });
  }
  return out;
}

function fingerprintOf(kind: string, trigger: string, ids: readonly string[]): string {
  return `${kind} ${trigger} ${[...ids].sort().join(',')}`;
}

/** Every record of the batches topic, by batch id. */
export interface Published {
  readonly records: number;
  /** Canonical replay line by batch id. */
  readonly byId: Map<string, string>;
  /** Batch ids whose copies differ in content (must never happen: batch ids are deterministic). */
  readonly differing: string[];
}

/** Reads the whole batches topic (up to its current end) with a fresh consumer group. */
export async function readPublished(kafka: Kafka, topic: string, pool: DatabasePool): Promise<Published> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<number, bigint>();
  for (const p of await admin.fetchTopicOffsets(topic)) {
    if (BigInt(p.high) > BigInt(p.low)) ends.set(p.partition, BigInt(p.high) - 1n);
  }
  await admin.disconnect();
  const store = new PipelineStore(pool);
  const values: { value: string }[] = [];
  if (ends.size > 0) {
    const consumer = kafka.consumer({ groupId: `chaos-verify-${Date.now()}`, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const left = new Set(ends.keys());
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('reading the batches topic took over 120 s')), 120_000);
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            values.push({ value: message.value?.toString('utf8') ?? '' });
            if (BigInt(message.offset) >= (ends.get(partition) ?? -1n)) left.delete(partition);
            if (left.size === 0) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
  }
  const byId = new Map<string, string>();
  const differing: string[] = [];
  for (const { value } of values) {
    const message = decodeBatchMessage(value);
    let batchId: string;
    let text: string;
    if (message.type === 'inline') {
      batchId = message.batch.batchId;
      text = value;
    } else {
      batchId = message.reference.batchId;
      const payload = await store.outboxPayload(batchId);
      if (payload === null)
        throw new Error(`batch ${batchId} is published by reference, but has no outbox row`);
      text = payload;
    }
    const line = asReplayLine(text);
    const earlier = byId.get(batchId);
    if (earlier !== undefined && earlier !== line) differing.push(batchId);
    byId.set(batchId, line);
  }
  return { records: values.length, byId, differing };
}

/** What the recording handler left. */
export interface Recorded {
  /** Effects by batch id. */
  readonly effects: Map<string, { fingerprint: string; pid: number }>;
  /** commit() calls, in time order per batch. */
  readonly calls: Map<string, { pid: number; at: number }[]>;
  readonly callCount: number;
}

export function readRecorded(dir: string): Recorded {
  const effects = new Map<string, { fingerprint: string; pid: number }>();
  const effectsDir = join(dir, 'effects');
  for (const name of safeList(effectsDir)) {
    if (!name.endsWith('.json')) continue; // a .tmp left by a process killed mid-write
    const e = JSON.parse(readFileSync(join(effectsDir, name), 'utf8')) as {
      batch_id: string;
      kind: string;
      trigger: string;
      message_ids: string[];
      pid: number;
    };
    effects.set(e.batch_id, { fingerprint: fingerprintOf(e.kind, e.trigger, e.message_ids), pid: e.pid });
  }
  const calls = new Map<string, { pid: number; at: number }[]>();
  let callCount = 0;
  for (const name of safeList(join(dir, 'calls'))) {
    for (const text of readFileSync(join(dir, 'calls', name), 'utf8').split('\n')) {
      if (text === '') continue;
      const c = JSON.parse(text) as { batch_id: string; pid: number; at: number };
      const list = calls.get(c.batch_id) ?? [];
      list.push({ pid: c.pid, at: c.at });
      calls.set(c.batch_id, list);
      callCount++;
    }
  }
  for (const list of calls.values()) list.sort((a, b) => a.at - b.at);
  return { effects, calls, callCount };
}

/**
 * How many commit() calls repeated an earlier one of the same batch, and those that are not the
 * documented crash window: a repeat is explained only when every earlier call was made by a process the
 * suite SIGKILLed, before that process recorded the batch complete. A repeat after a live worker's call
 * (two workers running one batch) or after a completion was recorded (the mark not honoured) is a bug.
 */
export function repeatedCommits(
  recorded: Pick<Recorded, 'calls'>,
  killedPids: ReadonlySet<number>,
  completedBy: ReadonlyMap<number, ReadonlySet<string>>,
): { repeated: number; unexplained: string[] } {
  let repeated = 0;
  const unexplained: string[] = [];
  for (const [batchId, calls] of recorded.calls) {
    if (calls.length < 2) continue;
    repeated += calls.length - 1;
    for (const earlier of calls.slice(0, -1)) {
      const killed = killedPids.has(earlier.pid);
      const completed = completedBy.get(earlier.pid)?.has(batchId) ?? false;
      if (!killed || completed)
        unexplained.push(
          `${batchId}: commit() by pid ${earlier.pid} (${killed ? 'killed' : 'not killed'}, ` +
            `${completed ? 'had recorded it complete' : 'had not recorded it complete'}) then again by another delivery`,
        );
    }
  }
  return { repeated, unexplained };
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Per worker log: lines by message, and which batches it recorded complete. */
export interface LogFacts {
  readonly byMsg: Map<string, number>;
  /** Batch ids each pid logged 'batch completed' for (it recorded the completion). */
  readonly completedBy: Map<number, Set<string>>;
  /** error-level lines (message and a few fields), at most 20. */
  readonly errors: string[];
}

export function readLogs(logs: readonly { file: string; pid: number }[]): LogFacts {
  const byMsg = new Map<string, number>();
  const completedBy = new Map<number, Set<string>>();
  const errors: string[] = [];
  for (const { file, pid } of logs) {
    for (const text of readFileSync(file, 'utf8').split('\n')) {
      if (!text.startsWith('{')) continue;
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue; // a line cut by SIGKILL
      }
      const msg = String(line.msg);
      byMsg.set(msg, (byMsg.get(msg) ?? 0) + 1);
      if (msg === 'batch completed') {
        const set = completedBy.get(pid) ?? new Set<string>();
        set.add(String(line.batch_id));
        completedBy.set(pid, set);
      }
      if (line.level === 'error' && errors.length < 20) errors.push(`${file}: ${text.slice(0, 300)}`);
    }
  }
  return { byMsg, completedBy, errors };
}

/** The database at the end. */
export async function readDatabase(pool: DatabasePool): Promise<{
  streamsByState: Record<string, number>;
  completionMarks: number;
}> {
  const rows = await pool.any(
    sql.unsafe`SELECT state::text AS state, count(*)::int AS n FROM streams GROUP BY state ORDER BY state`,
  );
  const streamsByState: Record<string, number> = {};
  for (const r of rows as readonly { state: string; n: number }[]) streamsByState[r.state] = r.n;
  const completionMarks = Number(
    await pool.oneFirst(sql.unsafe`SELECT count(*)::int FROM completed_batches`),
  );
  return { streamsByState, completionMarks };
}

/** Records on a topic (high minus low watermark, summed over partitions). */
export async function topicRecords(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Differences between two multisets of lines, as readable summaries (at most `limit` each way). */
export function differences(
  actual: readonly string[],
  expected: readonly string[],
  summary: (line: string) => string = batchSummary,
  limit = 10,
): { missing: string[]; extra: string[]; missingCount: number; extraCount: number } {
  const count = new Map<string, number>();
  for (const l of expected) count.set(l, (count.get(l) ?? 0) + 1);
  const extra: string[] = [];
  for (const l of actual) {
    const n = count.get(l) ?? 0;
    if (n > 0) count.set(l, n - 1);
    else extra.push(l);
  }
  const missing: string[] = [];
  for (const [l, n] of count) for (let i = 0; i < n; i++) missing.push(l);
  return {
    missing: missing.slice(0, limit).map(summary),
    extra: extra.slice(0, limit).map(summary),
    missingCount: missing.length,
    extraCount: extra.length,
  };
}
