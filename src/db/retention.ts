/**
 * Retention of the bookkeeping rows that would otherwise grow forever (docs/schema.md, "Retention"):
 *
 * - `completed_batches`: a pipeline worker's completion mark. It is what makes a redelivered batch a
 *   no-op, so it is deleted only once `completed_batches` seconds passed since completion — the setting
 *   has a floor of a day and should cover the batches topic's retention (a consumer group whose offsets
 *   expired reads the topic again from the start).
 * - `outbox` rows already published: deleted once `published_outbox` seconds passed since publication,
 *   and only when their stream is completed or gone (purged). A stream still waiting for its pipeline,
 *   failed or in retry keeps its row: the claim check of a batch sent by reference reads the payload
 *   from it, and `winchester streams retry` produces it again. Unpublished rows are never touched (the
 *   publisher still owes them to Kafka).
 *
 * Deletes go in small batches (`batch_size` rows per statement, by an index on the time column, rows
 * locked by someone else skipped), so each statement is short, holds few locks and never waits on the
 * hot path; several workers pruning at once share the work. {@link Pruner} runs it on a timer in a
 * worker; `winchester db prune` runs {@link pruneAll} once.
 */
import type { Logger } from '../log.js';
import type { WinchesterMetrics } from '../metrics/metrics.js';
import { toDatabaseError } from './errors.js';
import { type DatabasePool, sql } from './pool.js';

/** The tables retention applies to (the `table` label of the prune metrics). */
export type RetentionTable = 'completed_batches' | 'outbox';

/** How long rows are kept, and how many go per statement. */
export interface RetentionPolicy {
  /** Seconds a completion mark is kept after `completed_at`. */
  readonly completedBatches: number;
  /** Seconds a published outbox row (of a completed or purged stream) is kept after `published_at`. */
  readonly publishedOutbox: number;
  /** Rows deleted per statement (≥ 1). */
  readonly batchSize: number;
}

/** Rows per table: deleted by a prune, or that a dry run would delete. */
export type PruneCounts = Readonly<Record<RetentionTable, number>>;

/** The `retention` section of winchester.yaml (seconds; see src/config/schema.ts). */
export interface RetentionSettings {
  readonly completed_batches: number;
  readonly published_outbox: number;
  readonly interval: number;
  readonly batch_size: number;
}

/** The policy of the `retention` settings section. */
export function retentionPolicyOf(r: RetentionSettings): RetentionPolicy {
  return {
    completedBatches: r.completed_batches,
    publishedOutbox: r.published_outbox,
    batchSize: r.batch_size,
  };
}

function checkPolicy(p: RetentionPolicy): void {
  for (const [name, v] of [
    ['completedBatches', p.completedBatches],
    ['publishedOutbox', p.publishedOutbox],
  ] as const) {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`retention ${name} must be ≥ 0 seconds, got ${v}`);
  }
  if (!Number.isSafeInteger(p.batchSize) || p.batchSize < 1)
    throw new RangeError(`retention batchSize must be a whole number ≥ 1, got ${p.batchSize}`);
}

// A stream that still needs its batch: anything but completed (gone streams have no row at all).
const outboxPrunable = (seconds: number) => sql.fragment`
  o.published_at IS NOT NULL
  AND o.published_at < now() - make_interval(secs => ${seconds})
  AND NOT EXISTS (SELECT 1 FROM streams s WHERE s.id = o.stream_id AND s.state <> 'completed')`;

const completedPrunable = (seconds: number) => sql.fragment`
  c.completed_at < now() - make_interval(secs => ${seconds})`;

/**
 * Deletes at most `limit` rows of `table` that the policy lets go, oldest first; returns how many.
 * One short statement: the candidates come from an index range scan on the time column, and rows locked
 * by another transaction (a retry clearing a mark, another worker pruning) are skipped, not waited for.
 */
export async function pruneBatch(
  pool: DatabasePool,
  table: RetentionTable,
  policy: RetentionPolicy,
  limit: number = policy.batchSize,
): Promise<number> {
  checkPolicy(policy);
  try {
    const n =
      table === 'completed_batches'
        ? await pool.oneFirst(sql.unsafe`
            WITH doomed AS (
              SELECT c.batch_id FROM completed_batches c
              WHERE ${completedPrunable(policy.completedBatches)}
              ORDER BY c.completed_at LIMIT ${limit}
              FOR UPDATE SKIP LOCKED
            ), gone AS (
              DELETE FROM completed_batches c USING doomed d WHERE c.batch_id = d.batch_id RETURNING 1
            )
            SELECT count(*) AS n FROM gone`)
        : await pool.oneFirst(sql.unsafe`
            WITH doomed AS (
              SELECT o.id FROM outbox o
              WHERE ${outboxPrunable(policy.publishedOutbox)}
              ORDER BY o.published_at LIMIT ${limit}
              FOR UPDATE OF o SKIP LOCKED
            ), gone AS (
              DELETE FROM outbox o USING doomed d WHERE o.id = d.id RETURNING 1
            )
            SELECT count(*) AS n FROM gone`);
    return Number(n);
  } catch (error) {
    throw toDatabaseError(error, `pruning ${table}`);
  }
}

/** How many rows of each table the policy lets go now (what `db prune --dry-run` prints). */
export async function countPrunable(pool: DatabasePool, policy: RetentionPolicy): Promise<PruneCounts> {
  checkPolicy(policy);
  try {
    const row = await pool.one(sql.unsafe`
      SELECT
        (SELECT count(*) FROM completed_batches c WHERE ${completedPrunable(policy.completedBatches)}) AS completed,
        (SELECT count(*) FROM outbox o WHERE ${outboxPrunable(policy.publishedOutbox)}) AS outbox`);
    return { completed_batches: Number(row.completed), outbox: Number(row.outbox) };
  } catch (error) {
    throw toDatabaseError(error, 'counting the rows retention would delete');
  }
}

/** Options of {@link pruneAll}. */
export interface PruneAllOptions {
  /** The tables to prune, in order. Default both. */
  readonly tables?: readonly RetentionTable[];
  /** At most this many statements per table (the rest waits for the next run). Default: no limit. */
  readonly maxBatches?: number;
  /** Checked between statements: once aborted, the run stops after the statement in hand. */
  readonly signal?: AbortSignal;
  /** Called after each statement with the rows it deleted (metrics). */
  readonly onDeleted?: (table: RetentionTable, rows: number) => void;
}

/**
 * Deletes, batch after batch, every row the policy lets go (until a batch comes back short, the batch
 * limit is reached or `signal` aborts). Returns how many rows of each table went.
 */
export async function pruneAll(
  pool: DatabasePool,
  policy: RetentionPolicy,
  options: PruneAllOptions = {},
): Promise<PruneCounts> {
  checkPolicy(policy);
  const counts: Record<RetentionTable, number> = { completed_batches: 0, outbox: 0 };
  const maxBatches = options.maxBatches ?? Number.POSITIVE_INFINITY;
  for (const table of options.tables ?? (['completed_batches', 'outbox'] as const)) {
    for (let i = 0; i < maxBatches; i++) {
      if (options.signal?.aborted) return counts;
      const n = await pruneBatch(pool, table, policy);
      counts[table] += n;
      if (n > 0) options.onDeleted?.(table, n);
      if (n < policy.batchSize) break;
      // Let the worker's own queries in between two deletes.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  return counts;
}

/** Where a {@link Pruner} reports (the Prometheus counters in the workers). */
export interface PruneMetricsPort {
  /** `rows` of `table` deleted. */
  pruned(table: RetentionTable, rows: number): void;
  /** One run failed. */
  failed(table: RetentionTable): void;
}

/** Options of {@link Pruner}. */
export interface PrunerOptions {
  readonly pool: DatabasePool;
  readonly policy: RetentionPolicy;
  /** The tables this worker prunes (trigger workers: outbox; pipeline workers: completed_batches). */
  readonly tables: readonly RetentionTable[];
  /** Milliseconds between runs (> 0). */
  readonly intervalMs: number;
  readonly log: Logger;
  readonly metrics?: PruneMetricsPort;
  /** Statements per table and run (a backlog is worked off over several runs). Default 100. */
  readonly maxBatchesPerRun?: number;
  /** Delay before the first run, in ms. Default: a random point of the first interval. */
  readonly firstDelayMs?: number;
}

/**
 * Prunes on a timer, off the hot path: one run at a time, a bounded number of small deletes per run, a
 * failure logged and counted and retried at the next interval (never thrown). The timer does not keep
 * the process alive.
 */
export class Pruner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private stopped = false;
  /** Completed runs (successful or not), for tests and logs. */
  runs = 0;

  constructor(private readonly options: PrunerOptions) {
    checkPolicy(options.policy);
    if (!(options.intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${options.intervalMs}`);
  }

  /** Schedules the runs. */
  start(): void {
    if (this.stopped || this.timer !== undefined) return;
    const first = this.options.firstDelayMs ?? Math.floor(Math.random() * this.options.intervalMs);
    this.schedule(first);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        this.schedule(this.options.intervalMs);
      });
    }, ms);
    this.timer.unref();
  }

  /** One run over this worker's tables; resolves when it ended (errors are logged, not thrown). */
  async runOnce(): Promise<void> {
    const { pool, policy, log, metrics } = this.options;
    for (const table of this.options.tables) {
      if (this.abort.signal.aborted) break;
      try {
        const counts = await pruneAll(pool, policy, {
          tables: [table],
          maxBatches: this.options.maxBatchesPerRun ?? 100,
          signal: this.abort.signal,
          onDeleted: (t, n) => metrics?.pruned(t, n),
        });
        if (counts[table] > 0) log('info', 'pruned old rows', { table, rows: counts[table] });
      } catch (error) {
        metrics?.failed(table);
        log('warn', 'pruning failed; trying again at the next interval', {
          table,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
    this.runs += 1;
  }

  /** Stops the timer and waits for a run in progress (it stops after the statement in hand). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
  }
}

/**
 * Starts a worker's periodic prune of `tables` per the `retention` settings, reporting to the Prometheus
 * counters; undefined (nothing started) when retention.interval is 0 or there is no table to prune.
 */
export function startPruner(o: {
  readonly retention: RetentionSettings;
  readonly pool: DatabasePool;
  readonly log: Logger;
  readonly metrics?: WinchesterMetrics;
  readonly tables: readonly RetentionTable[];
}): Pruner | undefined {
  if (o.retention.interval <= 0 || o.tables.length === 0) return undefined;
  const m = o.metrics;
  const pruner = new Pruner({
    pool: o.pool,
    policy: retentionPolicyOf(o.retention),
    tables: o.tables,
    intervalMs: Math.max(1, Math.round(o.retention.interval * 1000)),
    log: o.log,
    ...(m === undefined
      ? {}
      : {
          metrics: {
            pruned: (table, rows) => m.rowsPruned.labels({ table }).inc(rows),
            failed: (table) => m.pruneErrors.labels({ table }).inc(),
          },
        }),
  });
  pruner.start();
  return pruner;
}
