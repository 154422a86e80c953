/**
 * The streams stage without a database: an in-memory {@link TaskStore} that hands out one claim and keeps
 * the checkpoints it is given, and the test builder's triggers with the keys the checkpoint path expects.
 */
import assert from 'node:assert/strict';
import type { Checkpoint, ClaimedPartition } from '../../src/db/checkpoint-store.js';
import { encodeStreamEvent } from '../../src/kafka/records.js';
import type { Event } from '../../src/model/event.js';
import { distinguishingKey } from '../../src/triggers/key.js';
import type { TriggerDefinition } from '../../src/triggers/types.js';
import type { TaskStore } from '../../src/worker/stream-task.js';
import { trigger } from '../unit/engine/builder.js';

/** A task store in memory; `cps` holds every checkpoint that succeeded, in order. */
export interface MemoryTaskStore extends TaskStore {
  readonly cps: Checkpoint[];
}

export interface MemoryTaskStoreOptions {
  /**
   * The claim handed out, over a first claim of partition 0 of topic `se`: epoch 1, offset 0, next
   * sequence 1, no live streams. Its snapshot is `{nextSeq, now: null, streams: liveStreams}`.
   */
  readonly claim?: Partial<Omit<ClaimedPartition, 'snapshot'>>;
  /** Thrown by successive checkpoints, one each (undefined entries are skipped); consumed as they throw. */
  readonly failures?: unknown[];
  /** Called with each checkpoint that succeeded, after it is kept (e.g. to fill an outbox). */
  readonly onCheckpoint?: (cp: Checkpoint) => void;
}

export function memoryTaskStore(options: MemoryTaskStoreOptions = {}): MemoryTaskStore {
  const { failures = [], onCheckpoint } = options;
  const fields = {
    topic: 'se',
    partition: 0,
    epoch: 1,
    offset: 0,
    nextSeq: 1,
    liveStreams: [],
    ...options.claim,
  };
  const claim: ClaimedPartition = {
    ...fields,
    snapshot: { nextSeq: fields.nextSeq, now: null, streams: fields.liveStreams },
  };
  const cps: Checkpoint[] = [];
  return {
    cps,
    claimPartition: async () => claim,
    loadStreamEvents: async () => [],
    checkpoint: async (cp) => {
      const f = failures.shift();
      if (f !== undefined) throw f;
      cps.push(cp);
      onCheckpoint?.(cp);
    },
  };
}

/**
 * The trigger with canonical stream keys (`distinguishingKey`): the test builder's keys are not in that
 * format, and a closing stream's batch parses its key back.
 */
export function withCanonicalKeys(def: TriggerDefinition): TriggerDefinition {
  return Object.freeze({
    ...def,
    match(event: Event, now: number) {
      const m = def.match(event, now);
      return m.matched ? { ...m, key: distinguishingKey(m.distinguishing) } : m;
    },
  });
}

/**
 * The streams-stage tests' trigger: one stream per `instance_id`, fired by a `fire.me` event into
 * `firePipeline`, never expired into a pipeline, with canonical stream keys.
 */
export function usageTrigger(firePipeline: string): TriggerDefinition {
  return withCanonicalKeys(
    trigger({
      name: 'usage',
      distinguishedBy: ['instance_id'],
      fire: [{ eventType: 'fire.me' }],
      firePipeline,
      expirePipeline: null,
    }),
  );
}

/** The JSON stream-events record the route stage writes for an event the trigger matches. */
export function streamEventRecord(def: TriggerDefinition, e: Event): string {
  const m = def.match(e, e.timestamp);
  assert.ok(m.matched, `trigger ${def.name} matches the ${e.event_type} event`);
  return encodeStreamEvent({ trigger: def.name, key: m.key, distinguishing: m.distinguishing, event: e });
}
