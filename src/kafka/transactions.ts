/**
 * Work-arounds for kafkajs' transactional producer, kept next to the client they correct.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Transaction } from 'kafkajs';
import { classifyKafkaError } from './errors.js';

/** Offsets to commit for a consumer group as part of a transaction (kafkajs' `sendOffsets` payload). */
export type TransactionOffsets = Parameters<Transaction['sendOffsets']>[0];

/** Options for {@link sendOffsets}. */
export interface SendOffsetsOptions {
  /** Further attempts after the first. Default 8. */
  retries?: number;
  /** First pause in milliseconds, doubled per attempt up to 2000. Default 100. */
  initialBackoffMs?: number;
}

// Protocol errors meaning "ask again, possibly another broker": the group's coordinator moved, or its
// partition of __consumer_offsets is still loading (every fresh cluster's first transactional commit).
const COORDINATOR_MOVED = new Set([
  'NOT_COORDINATOR_FOR_GROUP',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
]);

/**
 * Commits `offsets` for a consumer group inside `transaction` (TxnOffsetCommit), retrying when the group
 * coordinator has moved or is loading.
 *
 * kafkajs 2.2.4 means to retry those itself but compares against the type name `NOT_COORDINATOR`, while it
 * names that error `NOT_COORDINATOR_FOR_GROUP`; so its `sendOffsets` gives up at once. Calling it again is
 * safe: AddOffsetsToTxn for a group already in the transaction is a no-op, and the coordinator is looked up
 * afresh on every call.
 * @throws WinchesterError (see `classifyKafkaError`) when attempts run out or the error is of another kind.
 */
export async function sendOffsets(
  transaction: Pick<Transaction, 'sendOffsets'>,
  offsets: TransactionOffsets,
  options: SendOffsetsOptions = {},
): Promise<void> {
  const retries = options.retries ?? 8;
  let backoff = options.initialBackoffMs ?? 100;
  for (let attempt = 0; ; attempt++) {
    try {
      await transaction.sendOffsets(offsets);
      return;
    } catch (error) {
      const type = (error as { type?: unknown }).type;
      if (attempt >= retries || typeof type !== 'string' || !COORDINATOR_MOVED.has(type)) {
        throw classifyKafkaError(
          error,
          `committing offsets of group ${offsets.consumerGroupId} in a transaction`,
        );
      }
    }
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 2000);
  }
}
