import type { Instant } from '../timex/instant.js';

/** The trait types of event_definitions.yaml. */
export type TraitType = 'text' | 'int' | 'float' | 'datetime';

/**
 * A typed trait value. The tag keeps an int an int and a datetime a datetime across every hop
 * (JSON, Kafka, Postgres), which a bare JS number or string cannot.
 */
export type TraitValue =
  | { readonly type: 'text'; readonly value: string }
  | { readonly type: 'int'; readonly value: number }
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'datetime'; readonly value: Instant };

/**
 * A distilled event: the three required fields plus flat typed traits.
 * `timestamp` is microseconds since the Unix epoch, UTC.
 */
export interface Event {
  readonly message_id: string;
  readonly event_type: string;
  readonly timestamp: Instant;
  readonly traits: Readonly<Record<string, TraitValue>>;
}

export const text = (value: string): TraitValue => ({ type: 'text', value });
export const int = (value: number): TraitValue => ({ type: 'int', value });
export const float = (value: number): TraitValue => ({ type: 'float', value });
export const datetime = (value: Instant): TraitValue => ({ type: 'datetime', value });

/**
 * The value of a named field as the criteria and distinguished_by see it: the reference treats an
 * event as one flat dict, so `timestamp`, `message_id` and `event_type` are readable like traits.
 * Only own properties of `traits` are traits (a plain object's inherited members are not), and a
 * trait of the same name wins over the envelope field, as in the reference's dict.
 */
export function fieldOf(event: Event, name: string): TraitValue | undefined {
  const traits = event.traits;
  const t = traits[name];
  // Own properties only: `constructor`, `toString`, … would otherwise be read from Object.prototype
  // (and `__proto__` would give the prototype itself) as if the event had such a trait.
  if (t !== undefined && Object.hasOwn(traits, name)) return t;
  switch (name) {
    case 'timestamp':
      return { type: 'datetime', value: event.timestamp };
    case 'message_id':
      return { type: 'text', value: event.message_id };
    case 'event_type':
      return { type: 'text', value: event.event_type };
    default:
      return undefined;
  }
}
