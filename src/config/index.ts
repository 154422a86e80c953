/**
 * Configuration (SPEC §6): winchester.yaml and everything it references, validated into one
 * deeply frozen {@link WinchesterConfig}; every problem reported with file, line and column.
 */
export { renderConfigurationDoc } from './docs.js';
export {
  type ConfigFiles,
  ENV_SOURCE,
  type LoadConfigOptions,
  loadConfig,
  type ModuleRef,
  PYTHON_TRAIT_PLUGIN_ALIASES,
  type TraitPluginRef,
  triggerContext,
  type WinchesterConfig,
} from './load.js';
export { type Pos, Problems, sortProblems } from './problems.js';
export { envName, type Settings, winchesterSchema } from './schema.js';
export { readSettings } from './settings.js';
export {
  parseYaml,
  toPlain,
  type YamlFile,
  type YEntry,
  type YMap,
  type YNode,
  type YScalar,
} from './yaml.js';
