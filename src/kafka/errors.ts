/**
 * Kafka failures classified once, here at the adapter boundary, into the project's typed errors.
 * Callers decide on `retriable`, never on kafkajs class names or message text.
 */
import { causeChain, WinchesterError } from '../errors.js';

/** The cluster could not be reached or did not answer in time; trying again later may succeed. */
export class KafkaUnavailableError extends WinchesterError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, retriable: true });
  }
}

/** The cluster answered but refused the request (bad topic config, unsupported API, authorization…). */
export class KafkaRequestError extends WinchesterError {}

// kafkajs error names that mean "could not talk to the cluster", as opposed to "the cluster said no".
const UNAVAILABLE = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSLockTimeout',
  'KafkaJSTimeout',
]);

function errorChain(error: unknown): Error[] {
  // kafkajs wraps the last attempt's error in KafkaJSNumberOfRetriesExceeded (non-retriable) as `cause`;
  // the root cause decides whether the cluster was unreachable. The chain ends at the first non-Error.
  const chain: Error[] = [];
  for (const e of causeChain(error)) {
    if (!(e instanceof Error)) break;
    chain.push(e);
  }
  return chain;
}

/** A one-line description of a kafkajs error including its root cause, for logs and CLI messages. */
export function describeKafkaError(error: unknown): string {
  const chain = errorChain(error);
  if (chain.length === 0) return String(error);
  const messages = chain.map((e) => e.message).filter((m, i, all) => m.length > 0 && all.indexOf(m) === i);
  return messages.join(': ');
}

/**
 * Whether kafkajs judged the root cause retriable. kafkajs wraps the last attempt in a non-retriable
 * KafkaJSNumberOfRetriesExceeded, so the outermost flag alone would say "permanent" for every outage.
 */
export function isRetriableKafkaError(error: unknown): boolean {
  const chain = errorChain(error);
  const root = chain[chain.length - 1] as { retriable?: unknown } | undefined;
  return root?.retriable === true || chain.some((e) => UNAVAILABLE.has(e.name));
}

/**
 * Maps any error thrown by kafkajs to {@link KafkaUnavailableError} (retriable) or
 * {@link KafkaRequestError} (retriable as kafkajs judged it), keeping the original as `cause`.
 * @param context what was being attempted, e.g. `creating topic events`; prefixes the message.
 */
export function classifyKafkaError(error: unknown, context: string): WinchesterError {
  if (error instanceof WinchesterError) return error;
  const chain = errorChain(error);
  const message = `${context}: ${describeKafkaError(error)}`;
  if (chain.some((e) => UNAVAILABLE.has(e.name))) return new KafkaUnavailableError(message, { cause: error });
  const retriable =
    chain.length > 0 && (chain[chain.length - 1] as { retriable?: unknown }).retriable === true;
  return new KafkaRequestError(message, { cause: error, retriable });
}
