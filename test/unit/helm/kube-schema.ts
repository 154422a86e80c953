/**
 * Offline validation of rendered Kubernetes manifests against the Kubernetes OpenAPI schemas, as compiled
 * into the `kubernetes-models` packages (core API; `@kubernetes-models/keda` and
 * `@kubernetes-models/prometheus-operator` for the ScaledObject and ServiceMonitor CRDs).
 *
 * Two checks per manifest:
 * - the schema itself: types, formats (quantities, int-or-string), enums and required fields;
 * - unknown fields, which the Kubernetes schemas allow but the API server drops or rejects (a misspelt
 *   `readinesProbe` would silently vanish). The compiled validators read every property their schema
 *   knows, so the manifest is validated through proxies that record each property read: a property
 *   the validator never read is one the schema does not have.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

type ValidateFn = ((data: unknown) => boolean) & {
  errors?: { instancePath: string; message?: string; keyword: string; params: unknown }[] | null;
};

/** apiVersion's group → the package whose models cover it. */
function modelModule(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'keda.sh') return `@kubernetes-models/keda/${group}/${version}/${kind}`;
  if (group === 'monitoring.coreos.com') {
    return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  }
  return group === ''
    ? `kubernetes-models/${version}/${kind}`
    : `kubernetes-models/${group}/${version}/${kind}`;
}

const validators = new Map<string, Promise<ValidateFn>>();

/** The compiled schema validator of a kind: the one its model module imports. */
function validatorFor(apiVersion: string, kind: string): Promise<ValidateFn> {
  const key = `${apiVersion}/${kind}`;
  let found = validators.get(key);
  if (found === undefined) {
    found = (async () => {
      const spec = modelModule(apiVersion, kind);
      let modelUrl: string;
      let source: string;
      try {
        modelUrl = import.meta.resolve(spec);
        source = readFileSync(fileURLToPath(modelUrl), 'utf8');
      } catch {
        throw new Error(`no schema for ${apiVersion} ${kind} (no model module ${spec})`);
      }
      const m = /from\s*"(\.\.\/(?:\.\.\/)*_schemas\/[A-Za-z0-9]+\.js)"/.exec(source);
      if (m === null) throw new Error(`cannot find the schema validator imported by ${spec}`);
      const mod = (await import(new URL(m[1] ?? '', modelUrl).href)) as { validate: ValidateFn };
      return mod.validate;
    })();
    validators.set(key, found);
  }
  return found;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Wraps `root` so that every property read on it or below is recorded in `reads`. */
function tracking(root: unknown, reads: WeakMap<object, Set<string>>): unknown {
  const proxies = new WeakMap<object, object>();
  const wrap = (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    const existing = proxies.get(value);
    if (existing !== undefined) return existing;
    const seen = new Set<string>();
    reads.set(value, seen);
    const proxy = new Proxy(value, {
      get(target, prop, receiver) {
        if (typeof prop === 'string') seen.add(prop);
        return wrap(Reflect.get(target, prop, receiver));
      },
      has(target, prop) {
        if (typeof prop === 'string') seen.add(prop);
        return Reflect.has(target, prop);
      },
    });
    proxies.set(value, proxy);
    return proxy;
  };
  return wrap(root);
}

/** Paths of the properties of `value` that were never read. */
function unread(value: unknown, reads: WeakMap<object, Set<string>>, path: string, out: string[]): void {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) unread(item, reads, `${path}/${i}`, out);
    return;
  }
  if (!isPlainObject(value)) return;
  const seen = reads.get(value);
  for (const [k, v] of Object.entries(value)) {
    if (seen === undefined || !seen.has(k)) out.push(`${path}/${k}`);
    else unread(v, reads, `${path}/${k}`, out);
  }
}

/** Problems of one manifest, each `<kind>/<name> <path>: <message>`; empty when it is valid. */
export async function validateManifest(doc: Record<string, unknown>): Promise<string[]> {
  const apiVersion = doc.apiVersion;
  const kind = doc.kind;
  const name = isPlainObject(doc.metadata) ? String(doc.metadata.name) : '?';
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    return [`${name}: apiVersion and kind must be strings`];
  }
  const label = `${kind}/${name}`;
  let validate: ValidateFn;
  try {
    validate = await validatorFor(apiVersion, kind);
  } catch (e) {
    return [`${label}: ${(e as Error).message}`];
  }
  const reads = new WeakMap<object, Set<string>>();
  const ok = validate(tracking(doc, reads));
  if (!ok) {
    return (validate.errors ?? []).map(
      (e) => `${label} ${e.instancePath || '/'}: ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`,
    );
  }
  const unknown: string[] = [];
  unread(doc, reads, '', unknown);
  return unknown.map((p) => `${label} ${p}: not a field of ${apiVersion} ${kind}`);
}
