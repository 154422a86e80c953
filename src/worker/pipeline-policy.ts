/**
 * The pipeline worker's decisions that need no Kafka or Postgres: what a batch's stream state means
 * (run, resume a retry, or skip) and how long to wait before the next attempt of a failed pipeline.
 * Pure, so the rules are unit-tested on their own and the worker only carries them out.
 */
import type { StreamState } from '../engine/effects.js';

/** What to do with a batch given its stream's state in Postgres (`null`: no such stream). */
export type StreamDecision =
  /** The stream is waiting for this pipeline: run it. */
  | { readonly action: 'run'; readonly state: 'firing' | 'expiring' }
  /**
   * An operator asked for a retry (`winchester streams retry`): move the stream back to `to` (version
   * checked) and run.
   */
  | {
      readonly action: 'resume';
      readonly from: 'retry_fire' | 'retry_expire';
      readonly to: 'firing' | 'expiring';
    }
  /** Nothing to run: the stream failed and waits for an operator, is completed, gone, or not ours. */
  | { readonly action: 'skip'; readonly why: string };

/**
 * The state rules of docs/pipeline-worker.md. A fire batch runs on `firing` and resumes `retry_fire`;
 * an expire batch runs on `expiring` and resumes `retry_expire`. Everything else is skipped:
 *
 * - `error` / `expire_error`: the batch failed for good earlier (its redelivery, or the dead-lettered copy,
 *   must not run it again until an operator asks for a retry);
 * - `completed` or no stream (purged): done, although completion was not recorded under this id;
 * - `active`, or the state of the other kind: the stream is not waiting for this batch.
 */
export function decideForState(state: StreamState | null, kind: 'fire' | 'expire'): StreamDecision {
  if (state === null) return { action: 'skip', why: 'the stream does not exist (purged or never stored)' };
  if (kind === 'fire') {
    if (state === 'firing') return { action: 'run', state };
    if (state === 'retry_fire') return { action: 'resume', from: state, to: 'firing' };
  } else {
    if (state === 'expiring') return { action: 'run', state };
    if (state === 'retry_expire') return { action: 'resume', from: state, to: 'expiring' };
  }
  switch (state) {
    case 'error':
    case 'expire_error':
      return { action: 'skip', why: `the stream is in ${state}: it waits for 'winchester streams retry'` };
    case 'completed':
      return { action: 'skip', why: 'the stream is already completed' };
    default:
      return { action: 'skip', why: `the stream is ${state}, not waiting for a ${kind} pipeline` };
  }
}

/** The state a stream moves to when its pipeline fails for good. */
export function failedState(kind: 'fire' | 'expire'): 'error' | 'expire_error' {
  return kind === 'fire' ? 'error' : 'expire_error';
}

/** The state a stream is in while its pipeline runs. */
export function runningState(kind: 'fire' | 'expire'): 'firing' | 'expiring' {
  return kind === 'fire' ? 'firing' : 'expiring';
}

/** Retry timing of a failed pipeline. */
export interface BackoffPolicy {
  /** The delay before the first retry, in milliseconds (then doubled each time). */
  readonly baseMs: number;
  /** No delay is longer than this, in milliseconds. */
  readonly maxMs: number;
}

/**
 * The wait before retry number `retry` (1 for the first retry): exponential, `baseMs · 2^(retry−1)`
 * capped at `maxMs`, with "equal jitter" — a uniformly random point in the upper half of that — so
 * workers that failed together (a shared downstream outage) do not retry in lockstep, yet every wait is
 * at least half the nominal one. `random` returns a number in [0, 1) (injected for tests).
 */
export function backoffDelay(
  retry: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  if (!Number.isInteger(retry) || retry < 1)
    throw new RangeError(`retry must be an integer ≥ 1, got ${retry}`);
  const nominal = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(retry - 1, 52));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(nominal / 2 + (nominal / 2) * r);
}
