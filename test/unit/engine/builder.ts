/**
 * Test-only builder of TriggerDefinition objects, so engine tests do not depend on the YAML
 * compiler: plain-trait distinguished_by, event_type globs, predicate fire criteria, and an
 * expiration given as a function of first/last.
 */
import type { Event, TraitValue } from '../../../src/model/event.js';
import { parseDatetime } from '../../../src/timex/instant.js';
import type {
  DistinguishingValues,
  FireCriterion,
  TriggerDefinition,
  TriggerMatch,
} from '../../../src/triggers/types.js';

export const SECOND = 1_000_000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** A fixed origin so tests read as offsets: T0 + 5 * MINUTE. */
export const T0 = parseDatetime('2015-01-22T00:00:00Z');

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** True when the event type matches `globs` (an entry starting with `!` excludes). */
export function typeMatches(globs: readonly string[], type: string): boolean {
  const inc = globs.filter((g) => !g.startsWith('!'));
  const exc = globs.filter((g) => g.startsWith('!')).map((g) => g.slice(1));
  if (exc.some((g) => globToRegExp(g).test(type))) return false;
  return inc.length === 0 || inc.some((g) => globToRegExp(g).test(type));
}

export interface CriterionSpec {
  eventType?: string | string[];
  number?: number;
  where?: (e: Event) => boolean;
}

export interface TriggerSpec {
  name?: string;
  distinguishedBy?: string[];
  /** Event type globs of the single match criterion (default `*`). */
  match?: string[];
  fire?: CriterionSpec[];
  /** Seconds. */
  fireDelay?: number;
  /** Default: `$last + 1h`. */
  expiration?: (first: number, last: number, now: number) => number;
  firePipeline?: string | null;
  expirePipeline?: string | null;
}

function keyOf(values: Record<string, TraitValue>): string {
  return JSON.stringify(Object.entries(values).map(([k, v]) => [k, v.type, v.value]));
}

export function trigger(spec: TriggerSpec = {}): TriggerDefinition {
  const dist = spec.distinguishedBy ?? ['instance_id'];
  const match = spec.match ?? ['*'];
  const fireCriteria: FireCriterion[] = (spec.fire ?? [{ eventType: 'fire.me' }]).map((c) => {
    const globs =
      c.eventType === undefined ? ['*'] : Array.isArray(c.eventType) ? c.eventType : [c.eventType];
    return {
      number: c.number ?? 1,
      matches: (e: Event) => typeMatches(globs, e.event_type) && (c.where === undefined || c.where(e)),
    };
  });
  return Object.freeze({
    name: spec.name ?? 'test_trigger',
    debugLevel: 0 as const,
    firePipeline: spec.firePipeline === undefined ? 'fire_pipe' : spec.firePipeline,
    expirePipeline: spec.expirePipeline === undefined ? 'expire_pipe' : spec.expirePipeline,
    fireDelay: (spec.fireDelay ?? 0) * SECOND,
    distinguishedBy: dist,
    fireCriteria,
    match(event: Event): TriggerMatch {
      if (!typeMatches(match, event.event_type)) return { matched: false, reason: 'no_criterion_matched' };
      const values: Record<string, TraitValue> = {};
      for (const d of dist) {
        const v = event.traits[d];
        if (v === undefined) return { matched: false, reason: 'missing_distinguishing_trait' };
        values[d] = v;
      }
      return { matched: true, distinguishing: values as DistinguishingValues, key: keyOf(values) };
    },
    expiration: spec.expiration ?? ((_first: number, last: number) => last + HOUR),
  });
}

let counter = 0;

/** An event; `id` defaults to a fresh unique message id. */
export function ev(
  type: string,
  timestamp: number,
  traits: Record<string, string | number> = {},
  id: string = `m${++counter}`,
): Event {
  const t: Record<string, TraitValue> = {};
  for (const [k, v] of Object.entries(traits)) {
    t[k] = typeof v === 'string' ? { type: 'text', value: v } : { type: 'int', value: v };
  }
  return { message_id: id, event_type: type, timestamp, traits: t };
}
