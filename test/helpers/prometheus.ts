/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), for tests that scrape a
 * live `/metrics` endpoint: `# HELP` and `# TYPE` lines, and samples `name{label="value",…} value
 * [timestamp]`. It throws on anything malformed (a sample before its TYPE, a bad label, a bad number), so
 * a test that parses a scrape also checks that the exposition is well-formed.
 */

/** One sample line. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A metric family: its HELP, TYPE and samples (histograms: `_bucket`, `_sum`, `_count`). */
export interface Family {
  readonly name: string;
  help: string | undefined;
  type: string | undefined;
  readonly samples: Sample[];
}

/** Families by name, in the order they appear. */
export type Exposition = Map<string, Family>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, readonly string[]> = {
  counter: [''],
  gauge: [''],
  untyped: [''],
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
};

function unescapeText(text: string, quotes: boolean): string {
  return text.replace(/\\(.)/g, (_m, c: string) => {
    if (c === 'n') return '\n';
    if (c === '\\') return '\\';
    if (quotes && c === '"') return '"';
    throw new Error(`bad escape \\${c}`);
  });
}

function parseValue(text: string, line: number): number {
  // Prometheus reads values with Go's ParseFloat, which takes Inf and NaN in any letter case (prom-client
  // writes `Nan` for an empty event-loop histogram).
  const lower = text.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY;
  if (lower === '-inf') return Number.NEGATIVE_INFINITY;
  if (lower === 'nan') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text))
    throw new Error(`line ${line}: bad value ${text}`);
  return Number(text);
}

/** Parses one sample line: `name`, optional `{labels}`, value, optional timestamp. */
function parseSample(text: string, line: number): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(text);
  if (m === null) throw new Error(`line ${line}: no metric name in ${JSON.stringify(text)}`);
  const name = m[1] as string;
  let i = name.length;
  const labels: Record<string, string> = {};
  if (text[i] === '{') {
    i++;
    for (;;) {
      if (text[i] === '}') {
        i++;
        break;
      }
      const eq = text.indexOf('=', i);
      if (eq < 0) throw new Error(`line ${line}: unterminated labels`);
      const label = text.slice(i, eq);
      if (!LABEL_NAME.test(label)) throw new Error(`line ${line}: bad label name ${JSON.stringify(label)}`);
      if (text[eq + 1] !== '"') throw new Error(`line ${line}: label ${label} value is not quoted`);
      let j = eq + 2;
      let raw = '';
      for (;;) {
        const c = text[j];
        if (c === undefined) throw new Error(`line ${line}: unterminated label value`);
        if (c === '\\') {
          raw += c + (text[j + 1] ?? '');
          j += 2;
          continue;
        }
        if (c === '"') break;
        raw += c;
        j++;
      }
      if (Object.hasOwn(labels, label)) throw new Error(`line ${line}: label ${label} repeated`);
      labels[label] = unescapeText(raw, true);
      i = j + 1;
      if (text[i] === ',') i++;
      else if (text[i] !== '}') throw new Error(`line ${line}: expected , or } after label ${label}`);
    }
  }
  if (text[i] !== ' ') throw new Error(`line ${line}: expected a space before the value`);
  const rest = text
    .slice(i + 1)
    .trim()
    .split(/ +/);
  if (rest.length < 1 || rest.length > 2) throw new Error(`line ${line}: expected value [timestamp]`);
  const value = parseValue(rest[0] as string, line);
  if (rest.length === 2 && !/^-?\d+$/.test(rest[1] as string)) throw new Error(`line ${line}: bad timestamp`);
  return { name, labels, value };
}

/** Parses an exposition; throws naming the line of the first problem. */
export function parseExposition(text: string): Exposition {
  const families: Exposition = new Map();
  let current: Family | undefined;
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, help: undefined, type: undefined, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([^ ]+)(?: (.*))?$/.exec(raw);
      if (m === null) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string | undefined];
      if (!NAME.test(name)) throw new Error(`line ${line}: bad metric name ${JSON.stringify(name)}`);
      const f = family(name);
      if (kind === 'HELP') {
        if (f.help !== undefined) throw new Error(`line ${line}: second HELP for ${name}`);
        f.help = unescapeText(rest ?? '', false);
      } else {
        if (f.type !== undefined) throw new Error(`line ${line}: second TYPE for ${name}`);
        if (f.samples.length > 0) throw new Error(`line ${line}: TYPE of ${name} after its samples`);
        if (!TYPES.has(rest ?? '')) throw new Error(`line ${line}: unknown type ${rest}`);
        f.type = rest;
      }
      current = f;
      return;
    }
    const sample = parseSample(raw, line);
    const f = current;
    const suffixes = f?.type === undefined ? [''] : (SUFFIXES[f.type] as readonly string[]);
    if (f === undefined || !suffixes.some((s) => sample.name === f.name + s)) {
      throw new Error(
        `line ${line}: sample ${sample.name} outside its family (after ${f?.name ?? 'nothing'})`,
      );
    }
    if (f.type === 'histogram' && sample.name.endsWith('_bucket') && !Object.hasOwn(sample.labels, 'le')) {
      throw new Error(`line ${line}: histogram bucket without le`);
    }
    f.samples.push(sample);
  });
  return families;
}

/**
 * The value of the sample `name` (a family name, or a histogram's `_count`/`_sum`/`_bucket` series) whose
 * labels include `labels`; undefined when there is none. Throws when several samples match.
 */
export function sampleValue(
  exposition: Exposition,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  const familyName = exposition.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
  const f = exposition.get(familyName);
  if (f === undefined) return undefined;
  const hits = f.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (hits.length > 1) throw new Error(`${hits.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return hits[0]?.value;
}

/** The sum of the samples `name` whose labels include `labels` (0 when there is none). */
export function sampleSum(
  exposition: Exposition,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  const familyName = exposition.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
  const f = exposition.get(familyName);
  if (f === undefined) return 0;
  return f.samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

/** GETs `http://127.0.0.1:<port>/metrics` and parses it. */
export async function scrape(port: number, host = '127.0.0.1'): Promise<Exposition> {
  const res = await fetch(`http://${host}:${port}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseExposition(await res.text());
}
