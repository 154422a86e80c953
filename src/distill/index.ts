/**
 * Distilling OpenStack notifications into typed events (SPEC §2): the public surface of
 * `src/distill`. Load once with {@link loadDistiller}, then call `distill`/`distillJson` per
 * notification.
 */

export { compileEventTypes, compileGlob, type EventTypeMatcher, type GlobMatcher } from '../glob.js';
export {
  type CompiledDefinition,
  type CompiledTrait,
  DEFAULT_TRAITS,
  RESERVED_TRAIT_NAMES,
} from './definitions.js';
export {
  configDistillerLoader,
  createDistiller,
  Distiller,
  type DistillerOptions,
  type DistillResult,
  distillerFromYaml,
  type LoadDistillerOptions,
  loadDistiller,
  MALFORMED_REASONS,
  type MalformedReason,
} from './distiller.js';
export { compileFields, type FieldMatch, type FieldSelector, JsonPathError } from './jsonpath.js';
export {
  bitfieldPlugin,
  builtinPlugins,
  loadTraitPlugins,
  PluginLoadError,
  PluginParameterError,
  parsePluginRef,
  type ResolvedPluginRef,
  splitPlugin,
  type TraitPlugin,
  type TraitPluginFactory,
} from './plugins.js';
export { type LocatedYaml, type Position, parseYamlLocated } from './yaml-located.js';
