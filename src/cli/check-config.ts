/**
 * What `winchester check` validates, beyond what a worker's start needs to refuse: the configuration is
 * loaded with unknown keys as errors (a worker only warns about them, as the reference ignores them), and
 * every pipeline step is constructed once, as the pipeline worker does at start, so that params a handler
 * refuses are reported with the file and line of the step — not first found when a worker starts.
 */
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { type LoadConfigOptions, loadConfig, type WinchesterConfig } from '../config/load.js';
import { type Pos, Problems } from '../config/problems.js';
import { parseYaml, type YNode } from '../config/yaml.js';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { HandlerParamsError } from '../handlers/param-checks.js';
import type { LogLevel } from '../log.js';
import type { HandlerContext } from '../pipeline/handler.js';
import { handlerFactory, loadHandlerClasses } from '../pipeline/registry.js';

/** A configuration that passed every check, with its warnings. */
export interface CheckedConfiguration {
  readonly config: WinchesterConfig;
  readonly warnings: readonly ConfigProblem[];
}

/**
 * Loads and checks the configuration at `path` the way `winchester check` does.
 * @throws ConfigError listing every problem, each with its file and (where there is one) line.
 */
export async function checkConfiguration(
  path: string,
  options: Omit<LoadConfigOptions, 'unknownKeys'> = {},
): Promise<CheckedConfiguration> {
  const config = await loadConfig(path, { ...options, unknownKeys: 'error' });
  const cwd = options.cwd ?? process.cwd();
  const show = (abs: string) => {
    const rel = relative(cwd, abs);
    return rel !== '' && !rel.startsWith('..') ? rel : abs;
  };
  const handlerWarnings = await checkSteps(config, show);
  return { config, warnings: [...config.warnings, ...handlerWarnings] };
}

/** Where each step of each pipeline is written: its entry, and each of its params' values. */
interface StepPlace {
  readonly pos: Pos;
  readonly params: ReadonlyMap<string, Pos>;
}

function stepPlaces(root: YNode | null): Map<string, StepPlace[]> {
  const out = new Map<string, StepPlace[]>();
  if (root?.kind !== 'map') return out;
  for (const entry of root.entries) {
    if (entry.value.kind !== 'seq') continue;
    out.set(
      entry.key,
      entry.value.items.map((item) => {
        const params = new Map<string, Pos>();
        const p = item.kind === 'map' ? item.get('params')?.value : undefined;
        if (p?.kind === 'map') for (const e of p.entries) params.set(e.key, e.keyPos);
        return { pos: item.pos, params };
      }),
    );
  }
  return out;
}

/**
 * Constructs every step of every pipeline with a context that records what the constructors log. A step
 * that cannot be constructed is an error at its line (at the param's line when the handler names the
 * param); a warning a constructor logs (unknown params) is a warning at the step's line.
 */
async function checkSteps(config: WinchesterConfig, show: (abs: string) => string): Promise<ConfigProblem[]> {
  if (config.pipelines.size === 0) return [];
  const classes = await loadHandlerClasses(config.handlers, {
    pipelines: config.pipelines,
    configFile: show(config.files.config),
  });
  const pipelineFile = config.files.pipelineConfig;
  const file = pipelineFile === null ? 'pipelines.yaml' : show(pipelineFile);
  let places = new Map<string, StepPlace[]>();
  if (pipelineFile !== null) {
    // Loaded once already (or the load would have failed); read again for the positions only.
    places = stepPlaces(parseYaml(await readFile(pipelineFile, 'utf8'), file, new Problems()).root);
  }
  const logged: { level: LogLevel; msg: string; fields?: Record<string, unknown> }[] = [];
  const context: HandlerContext = {
    log: (level, msg, fields) =>
      void logged.push({ level, msg, ...(fields === undefined ? {} : { fields }) }),
    // Constructors must not call out; a handler that did would fail its check instead of reaching a server.
    fetch: async () => {
      throw new Error('winchester check does not make HTTP requests');
    },
    now: () => Date.now(),
    sleep: async () => {},
  };
  const create = handlerFactory(classes, context);
  const errors: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const at = (pos: Pos | undefined, message: string): ConfigProblem =>
    pos === undefined ? { file, message } : { file, line: pos.line, column: pos.column, message };
  for (const pipeline of config.pipelines.values()) {
    pipeline.handlers.forEach((step, i) => {
      const place = places.get(pipeline.name)?.[i];
      const where = `pipeline '${pipeline.name}', handler ${i + 1} '${step.name}'`;
      logged.length = 0;
      let instance: unknown;
      try {
        instance = create({ name: step.name, params: step.params });
      } catch (err) {
        const param = err instanceof HandlerParamsError ? err.param : undefined;
        const pos = (param === undefined ? undefined : place?.params.get(param)) ?? place?.pos;
        errors.push(at(pos, `${where}: ${err instanceof Error ? err.message : String(err)}`));
        return;
      }
      const missing = ['handleEvents', 'commit', 'rollback'].filter(
        (m) => typeof (instance as Record<string, unknown> | null)?.[m] !== 'function',
      );
      if (missing.length > 0)
        errors.push(at(place?.pos, `${where}: the handler has no ${missing.join(', ')} method`));
      for (const line of logged) {
        if (line.level !== 'warn' && line.level !== 'error') continue;
        const names = line.fields?.params;
        const listed = Array.isArray(names) ? names.map(String) : [];
        const pos = (listed[0] === undefined ? undefined : place?.params.get(listed[0])) ?? place?.pos;
        const detail = listed.length > 0 ? ` (${listed.join(', ')})` : '';
        const message = `${where}: ${line.msg}${detail}`;
        (line.level === 'error' ? errors : warnings).push(at(pos, message));
      }
    });
  }
  if (errors.length > 0) throw new ConfigError(errors);
  return warnings;
}
