import type { Event, TraitValue } from '../model/event.js';
import type { Instant } from '../timex/instant.js';

/**
 * One value of a stream's identity: a typed trait value, or a time range computed by a
 * `{trait: timex}` entry of distinguished_by (e.g. `timestamp: "day"`).
 */
export type DistinguishingValue =
  | TraitValue
  | { readonly type: 'range'; readonly begin: Instant; readonly end: Instant };

/** Distinguishing values by trait name, in the order distinguished_by lists them. */
export type DistinguishingValues = Readonly<Record<string, DistinguishingValue>>;

/** Why an event did not join a trigger (bounded set: used as a metric label at debug_level ≥ 1). */
export type MismatchReason =
  | 'no_criterion_matched'
  | 'missing_distinguishing_trait'
  | 'bad_distinguishing_value';

export type TriggerMatch =
  | {
      readonly matched: true;
      /** The stream identity within the trigger. */
      readonly distinguishing: DistinguishingValues;
      /**
       * Canonical, deterministic string of `distinguishing` (same values → same string in every
       * process and version). Streams are keyed and Kafka-partitioned by trigger name + this key.
       */
      readonly key: string;
    }
  | { readonly matched: false; readonly reason: MismatchReason };

/** A compiled fire criterion: the stream is ready when each criterion has matched `number` events. */
export interface FireCriterion {
  readonly number: number;
  matches(event: Event): boolean;
}

/** A trigger definition from triggers.yaml, validated and compiled (frozen). */
export interface TriggerDefinition {
  readonly name: string;
  readonly debugLevel: 0 | 1 | 2;
  readonly firePipeline: string | null;
  readonly expirePipeline: string | null;
  /** Delay between fire criteria being met and the fire, in microseconds. */
  readonly fireDelay: number;
  /** Trait names of distinguished_by, in order. */
  readonly distinguishedBy: readonly string[];
  readonly fireCriteria: readonly FireCriterion[];
  /** Whether the event joins this trigger (any match criterion, all distinguishing traits present). */
  match(event: Event, now: Instant): TriggerMatch;
  /** The expiration time of a stream with these first/last event timestamps. */
  expiration(first: Instant, last: Instant, now: Instant): Instant;
}
