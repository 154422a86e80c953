/**
 * Comparing what the workers published on the batches topic with what `winchester replay` prints for the
 * same input: both are brought to replay's output line with object keys sorted.
 */
import assert from 'node:assert/strict';
import { closedStreamLine } from '../../src/cli/replay.js';
import type { StreamClosed } from '../../src/engine/effects.js';
import { decodeBatch } from '../../src/kafka/records.js';
import { runCli } from './cli.js';

/**
 * A replay line with object keys sorted, for comparing as sets: events read back from Postgres have their
 * traits in jsonb's key order, not the distiller's (the order carries no meaning).
 */
export function canonical(line: string): string {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (typeof v !== 'object' || v === null) return v;
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  };
  return JSON.stringify(sortKeys(JSON.parse(line)));
}

/** A published batch (inline form) in replay's output form. */
export function asReplayLine(value: string): string {
  const b = decodeBatch(value);
  const closed = {
    trigger: b.trigger,
    type: b.kind === 'fire' ? 'fired' : 'expired',
    pipeline: b.pipeline,
    first: b.first,
    last: b.last,
  } as StreamClosed;
  return canonical(closedStreamLine(closed, b.distinguishing, b.events));
}

/**
 * What `winchester replay` prints for `lines` (notifications, JSON lines) with the StackTach configuration
 * of etc/: the batches a pipeline would be given, canonical. `until` moves replay's clock at the end.
 */
export async function replayBatches(
  lines: readonly string[],
  until?: string,
  env: NodeJS.ProcessEnv = {},
): Promise<string[]> {
  const args = ['replay', '-q', '-c', 'etc/winchester.yaml'];
  if (until !== undefined) args.push('--until', until);
  const r = await runCli(args, { stdin: lines.join('\n'), env });
  assert.equal(r.code, 0, r.stderr);
  return r
    .stdoutLines()
    .filter((l) => JSON.parse(l).pipeline !== null)
    .map(canonical);
}

/** A one-line summary of a canonical batch line (kind, trigger, distinguishing values, events, span). */
export function batchSummary(line: string): string {
  const b = JSON.parse(line) as {
    kind?: string;
    type?: string;
    trigger: string;
    distinguished_by: unknown;
    events: { message_id: string }[];
    first_event: string;
    last_event: string;
  };
  return `${b.kind ?? b.type} ${b.trigger} ${JSON.stringify(b.distinguished_by)} ${b.events.length} events ${b.first_event}..${b.last_event}`;
}

/** Compares batch lines by summary first (a readable difference), then in full. */
export function assertSameBatches(actual: readonly string[], expected: readonly string[]): void {
  assert.deepEqual([...actual].map(batchSummary).sort(), [...expected].map(batchSummary).sort());
  assert.deepEqual([...actual].sort(), [...expected].sort());
}
