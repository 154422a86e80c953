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
       * Format (see key.ts, `parseKey` reads it back): a JSON array of `[trait, tag, value…]`
       * sorted by trait name, e.g. `[["instance_id","t","abc"],["timestamp","r","2014-08-01T00:00:00.000000Z","2014-08-02T00:00:00.000000Z"]]`.
       */
      readonly key: string;
    }
  | { readonly matched: false; readonly reason: MismatchReason };

/**
 * A compiled fire criterion: the stream is ready when each criterion has matched `number` events.
 * An empty list of fire criteria is met at once (as the reference's `should_fire`).
 */
export interface FireCriterion {
  /** At least 1. */
  readonly number: number;
  /** Pure and allocation-light; never throws for any event. */
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
  /**
   * Whether the event joins this trigger (any match criterion, all distinguishing traits present).
   * Pure and deterministic; never throws for any event. `now` is only used by an expression that
   * would read `$timestamp` without it being set, which the loader's checks make impossible today.
   * The result is immutable and may be the same (frozen) object as for an earlier event with the
   * same distinguishing values: compare results by value, never mutate them.
   */
  match(event: Event, now: Instant): TriggerMatch;
  /**
   * The expiration time of a stream with these first/last event timestamps (`$timestamp` is
   * `now`); a range means its beginning, as in the reference. Throws a `TimexEvalError` only when
   * the arithmetic leaves the supported years (1700–2200).
   */
  expiration(first: Instant, last: Instant, now: Instant): Instant;
}
