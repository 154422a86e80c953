/** Shared helpers for the trigger tests: compile YAML or objects, build typed events. */
import { stringify } from 'yaml';
import { triggerContext } from '../../../src/config/load.js';
import { Problems } from '../../../src/config/problems.js';
import { parseYaml } from '../../../src/config/yaml.js';
import { datetime, type Event, float, int, type TraitValue, text } from '../../../src/model/event.js';
import { parseDatetime } from '../../../src/timex/instant.js';
import { type Criterion, compileCriterion } from '../../../src/triggers/criteria.js';
import { type CompiledTrigger, compileTriggers } from '../../../src/triggers/definition.js';

export interface Compiled {
  triggers: CompiledTrigger[];
  problems: Problems;
}

/** Compiles triggers.yaml text (or a value, written out as YAML first). */
export function compile(source: unknown, file = 'triggers.yaml'): Compiled {
  const text = typeof source === 'string' ? source : stringify(source);
  const problems = new Problems();
  const { root } = parseYaml(text, file, problems);
  const triggers = compileTriggers(root, triggerContext(file, problems));
  return { triggers, problems };
}

/** Compiles one trigger that must be valid. */
export function trigger(def: Record<string, unknown>): CompiledTrigger {
  const { triggers, problems } = compile([def]);
  if (!problems.ok) throw new Error(`unexpected problems: ${JSON.stringify(problems.errors)}`);
  return triggers[0] as CompiledTrigger;
}

/** Compiles one criterion (as YAML) and returns it, or the problems. */
export function criterion(def: unknown): { c: Criterion | undefined; problems: Problems } {
  const problems = new Problems();
  const { root } = parseYaml(typeof def === 'string' ? def : stringify(def), 'triggers.yaml', problems);
  const c = root ? compileCriterion(root, triggerContext('triggers.yaml', problems), 'criterion') : undefined;
  return { c, problems };
}

/** The minimal valid trigger, with overrides. */
export function base(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'test_trigger',
    expiration: '$last + 1d',
    fire_pipeline: 'test_pipeline',
    fire_criteria: [{ event_type: 'test.thing' }],
    match_criteria: [{ event_type: 'test.*' }],
    ...over,
  };
}

/** A datetime instant from text. */
export const at = (s: string) => parseDatetime(s);

type Raw = string | number | TraitValue | { dt: string } | { f: number };

/**
 * Builds an event. Trait values: string → text, integer → int, `{f: n}` → float, `{dt: '…'}` →
 * datetime, or a TraitValue as is.
 */
export function ev(
  eventType: string,
  traits: Record<string, Raw> = {},
  timestamp = '2014-08-01 12:00:00',
  id = 'm-1',
): Event {
  const out: Record<string, TraitValue> = {};
  for (const [k, v] of Object.entries(traits)) {
    if (typeof v === 'string') out[k] = text(v);
    else if (typeof v === 'number') out[k] = Number.isInteger(v) ? int(v) : float(v);
    else if ('dt' in v) out[k] = datetime(parseDatetime(v.dt));
    else if ('f' in v) out[k] = float(v.f);
    else out[k] = v;
  }
  return { message_id: id, event_type: eventType, timestamp: parseDatetime(timestamp), traits: out };
}

/** Messages of all errors, for assertions. */
export const messages = (p: Problems) => p.errors.map((e) => `${e.line}:${e.column}: ${e.message}`);
