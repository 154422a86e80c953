/**
 * Renders docs/configuration.md from the settings schema, so the documentation cannot drift
 * from what the loader accepts (a unit test compares the file with this output; regenerate it
 * with `node --import tsx scripts/config-docs.ts`).
 */
import { envName, type Fields, type Leaf, type Section, winchesterSchema } from './schema.js';

function typeText(spec: Leaf<unknown>): string {
  switch (spec.type) {
    case 'string':
      return 'string';
    case 'optional-string':
      return 'string';
    case 'file':
      return 'file name';
    case 'string-list':
      return 'string or list';
    case 'int':
      return `integer ${spec.min}–${spec.max}`;
    case 'seconds':
      return spec.min === undefined ? 'seconds' : `seconds ≥ ${spec.min}`;
    case 'boolean':
      return 'boolean';
    case 'enum':
      return (spec.values ?? []).map((v) => `\`${v}\``).join(' | ');
    case 'string-map':
      return 'mapping';
    case 'timex':
      return 'timex';
  }
}

function defaultText(spec: Leaf<unknown>): string {
  const d = spec.default;
  if (d === null) return '(unset)';
  if (Array.isArray(d)) return d.length === 0 ? '(none)' : d.map((x) => `\`${x}\``).join(', ');
  if (typeof d === 'object')
    return Object.keys(d as object).length === 0 ? '(none)' : `\`${JSON.stringify(d)}\``;
  return `\`${String(d)}\``;
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function renderSection(spec: Section<Fields>, path: string[], out: string[]): void {
  const rows: string[] = [];
  const subsections: [string, Section<Fields>][] = [];
  for (const [key, child] of Object.entries(spec.fields)) {
    if (child.kind === 'section') {
      subsections.push([key, child]);
      continue;
    }
    const full = [...path, key];
    const env = child.env
      ? [envName(full), ...(child.envAliases ?? [])].map((e) => `\`${e}\``).join(', ')
      : '—';
    const help = child.ignored ? `${child.help} *Accepted for compatibility; no effect.*` : child.help;
    rows.push(
      `| \`${key}\` | ${cell(typeText(child))} | ${cell(defaultText(child))} | ${env} | ${cell(help)} |`,
    );
  }
  if (rows.length > 0) {
    out.push(
      '| key | type | default | environment | meaning |',
      '| --- | --- | --- | --- | --- |',
      ...rows,
      '',
    );
  }
  for (const [key, child] of subsections) {
    const full = [...path, key];
    out.push(`${'#'.repeat(Math.min(2 + full.length, 6))} \`${full.join('.')}\``, '', child.help, '');
    renderSection(child, full, out);
  }
}

/** The full text of docs/configuration.md. */
export function renderConfigurationDoc(): string {
  const out: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `node --import tsx scripts/config-docs.ts`; do not edit by hand. -->',
    '',
    '`winchester.yaml` keeps the keys of the original Winchester and adds `kafka`, `schema_registry`,',
    '`metrics` and `clock`. `winchester check -c winchester.yaml` validates it and every file it',
    'references; a problem is reported as `file:line:column: message`.',
    '',
    'Files are read as YAML 1.1, like PyYAML does for the reference (`yes`/`no` are booleans, `<<`',
    'merge keys work). A key this page does not list is ignored with a warning, unless it looks like',
    'a misspelling of one it does list, which is an error.',
    '',
    '## File names',
    '',
    'Relative file names (`distiller_config`, `trigger_definitions`, `pipeline_config`, relative module',
    'paths of `pipeline_handlers` and `distiller_trait_plugins`) are searched in each `config_path`',
    'directory in order, then in the directory of winchester.yaml. Relative `config_path` entries are',
    "taken from winchester.yaml's directory (the reference took them from the working directory).",
    '',
    '## Environment overrides',
    '',
    'Every setting except the mappings (`pipeline_handlers`, `distiller_trait_plugins`) can be',
    'overridden by an environment variable named `WINCHESTER_` followed by its path in upper case',
    'with `_` between the parts: `WINCHESTER_DATABASE_URL`, `WINCHESTER_KAFKA_TOPICS_BATCHES`,',
    '`WINCHESTER_METRICS_PORT`. Lists are comma-separated (`WINCHESTER_KAFKA_BROKERS=k1:9092,k2:9092`);',
    'booleans are `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`). `DATABASE_URL` and',
    '`KAFKA_BROKERS` are aliases, used when the `WINCHESTER_` variable is not set. An environment',
    'variable wins over the file; an empty one is ignored.',
    '',
    '## Settings',
    '',
  ];
  renderSection(winchesterSchema, [], out);
  out.push(...FILES_SECTION);
  return `${out.join('\n').trimEnd()}\n`;
}

const FILES_SECTION = [
  '## triggers.yaml',
  '',
  'A list of triggers with the keys of the reference (`name`, `distinguished_by`, `expiration`,',
  '`fire_pipeline`, `expire_pipeline`, `match_criteria`, `fire_criteria`, `load_criteria`,',
  '`fire_delay`, `debug_level`); SPEC.md §4 describes them. Checked at load, beyond the reference:',
  '',
  '- names are unique; `expiration`, `match_criteria` and `fire_criteria` are required, and at least',
  '  one of `fire_pipeline` / `expire_pipeline`, which must exist in pipelines.yaml (an empty name is',
  "  an error: leave the key out, or set it to null, for no pipeline; the reference took `''` for a",
  '  pipeline that does not exist and put every stream of the trigger in error when it fired);',
  '- every time expression parses (the problem points at the character); `expiration` uses only',
  '  `$first`, `$last`, `$timestamp`; a `{trait: timex}` entry of `distinguished_by` only `$timestamp`;',
  '- a typed trait criterion has one key of `int`, `float`, `string`, `text`, `datetime`; numeric ones',
  '  read `[=|>|<] number` (`"> 4096"`, also `">4096"`); any other operator is an error (the reference',
  '  silently never matched it);',
  '- `debug_level` is 0, 1 or 2; `fire_delay` is a number of seconds ≥ 0; `number` a whole number ≥ 1.',
  '',
  'Oddities that load in the reference still load, with a warning: an empty `match_criteria` (never',
  'matches), an empty `fire_criteria` (ready to fire at once), a `map_distinguished_by` key that is',
  'not distinguishing, a boolean or unquoted-date constant in `traits`.',
  '',
  '### Stream keys',
  '',
  'The distinguishing values of a stream are written as one canonical string, the Kafka partition',
  'key of the stream-events topic and the identity of the stream within its trigger: a JSON array of',
  '`[trait, type, value…]` entries sorted by trait name, every value a JSON string (`t` text, `i` int,',
  '`f` float, `d` datetime, `r` range with begin and end), datetimes as',
  '`2014-08-01T00:00:00.000000Z`. For example',
  '`[["instance_id","t","a1b2"],["timestamp","r","2014-08-01T00:00:00.000000Z","2014-08-02T00:00:00.000000Z"]]`.',
  '',
  '## pipelines.yaml',
  '',
  'A mapping of pipeline name to a list of handlers, each a name or `{name, params}`. `params` is',
  'passed to the handler as is. A handler name is a built-in (`logger`, `usage`, `notabene`,',
  '`atompub`, `webhook`), one of the reference class paths for them',
  '(`winchester.pipeline_handler:LoggingHandler`, `:UsageHandler`, `:NotabeneHandler`,',
  '`:AtomPubHandler`), or a name given in `pipeline_handlers`, whose module must exist.',
];
