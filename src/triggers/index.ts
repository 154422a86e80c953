/**
 * Triggers (SPEC §4): triggers.yaml compiled into {@link TriggerDefinition}s whose `match` gives
 * the stream identity (distinguishing values and the canonical key) of an event.
 */

export { compileGlobs, type GlobMatcher, globError } from '../glob.js';
export {
  type CompileContext,
  type Criterion,
  compileCriterion,
  type TimexParser,
  timeVariables,
  timexContains,
} from './criteria.js';
export { type CompiledTrigger, compileTriggers, type TriggerSource } from './definition.js';
export { distinguishingKey, isoInstant, keyOf, parseKey } from './key.js';
export type {
  DistinguishingValue,
  DistinguishingValues,
  FireCriterion,
  MismatchReason,
  TriggerDefinition,
  TriggerMatch,
} from './types.js';
