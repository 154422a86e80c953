/**
 * Scalar typing as PyYAML's `safe_load` does it, so the reference's config files mean the same here.
 *
 * The `yaml` package's YAML 1.1 schema is wider than PyYAML's resolver in two ways that matter for
 * real files: it reads the single letters `y`/`n` as booleans (`fields: n` is a path), and it reads
 * `.`, `1e5` and `1.` forms PyYAML keeps as strings or reads differently (`config_path: .` must stay
 * the directory `.`, not NaN). Every YAML loader in the project builds its tags through here.
 */

interface TagLike {
  tag?: string;
  format?: string;
  test?: RegExp;
  identify?: (v: unknown) => boolean;
}

const PY_TRUE = /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const PY_FALSE = /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/;
// PyYAML's float resolver without the sexagesimal form: a digit before the dot (or digits after a
// leading dot), and an exponent only with a dot and an explicit sign.
const PY_FLOAT = /^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?)$/;

/**
 * Adjusts the `yaml` package's YAML 1.1 tags to PyYAML's resolver. The timestamp tag is dropped so
 * datetimes stay text (a JS Date would lose the microseconds); readers parse them where they
 * accept datetimes.
 */
export function pyyamlTags<T>(tags: readonly T[]): T[] {
  const out: T[] = [];
  for (const t of tags) {
    const tag = t as TagLike;
    if (tag.tag === 'tag:yaml.org,2002:timestamp') continue;
    if (tag.tag === 'tag:yaml.org,2002:bool' && tag.test) {
      const isTrue = tag.test.test('true');
      out.push({ ...tag, test: isTrue ? PY_TRUE : PY_FALSE } as T);
      continue;
    }
    if (
      tag.tag === 'tag:yaml.org,2002:float' &&
      tag.test &&
      !tag.test.test('.nan') &&
      !tag.test.test('.inf')
    ) {
      // The plain and exponent float tags: one PyYAML-shaped test covers both, so drop the EXP one.
      if (tag.format === 'EXP') continue;
      out.push({ ...tag, test: PY_FLOAT } as T);
      continue;
    }
    out.push(t);
  }
  return out;
}
