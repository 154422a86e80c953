/**
 * Notification templates: captured Nova notification sequences with placeholders, compiled once
 * at load into builders that produce a filled notification object without re-parsing JSON.
 *
 * A template file is a JSON array. Element 0 is metadata: the number of distinct `UUID`, `XUUID`,
 * `V4` and `V6` placeholders and `time_map`, `[[[[DT_n]]]]` → `[days, seconds, microseconds]`
 * after the operation's start. The other elements are the notifications of one operation.
 *
 * Compilation splits every string holding placeholders into segments (literal text and slot or
 * attribute references) and turns each notification into one generated builder function whose body
 * is an object literal, so filling a notification costs about as much as writing it by hand. Some payload fields are rebound to per-instance values (launch time, flavor,
 * image) so that one instance looks the same in every operation it goes through — the usage audit
 * compares exactly these fields between an instance's operations and its `.exists`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { US_PER_DAY, US_PER_SECOND } from '../timex/instant.js';

/** Per-fill values that are not template-local placeholders: the instance's identity and state. */
export type Attrs = Record<string, unknown>;

/** Builds one JSON value from the operation's slot values and the instance attributes. */
export type Builder = (slots: readonly string[], attrs: Attrs) => unknown;

/** Builds the same notification directly as JSON text (what `JSON.stringify` of the object gives). */
export type JsonBuilder = (slots: readonly string[], attrs: Attrs) => string;

/** One notification of a compiled template. */
export interface CompiledNotification {
  readonly eventType: string;
  /** Offset of its `timestamp` from the operation start, in microseconds. */
  readonly offsetUs: number;
  readonly build: Builder;
  readonly buildJson: JsonBuilder;
}

/** A compiled template: everything needed to fill one operation quickly. */
export interface CompiledTemplate {
  /** File name without `.json`, e.g. `compute.instance.resize.prep.start_24`. */
  readonly name: string;
  /** Operation kind: the file name up to the first `_` (`compute.instance.resize.prep.start`), or `eod_exists`. */
  readonly operation: string;
  readonly uuidCount: number;
  readonly xuuidCount: number;
  readonly v4Count: number;
  readonly v6Count: number;
  /** Offsets of `DT_n` from the operation start (µs), indexed by n; `NaN` where the map has no entry. */
  readonly dtOffsets: readonly number[];
  /** Index in the slot array of the first DT slot (slots are UUID, XUUID, V4, V6, DT in that order). */
  readonly dtBase: number;
  /** Total slot count. */
  readonly slotCount: number;
  /** Slot holding the instance id (the UUID used by `payload.instance_id`), or -1. */
  readonly instanceSlot: number;
  /** Notifications sorted by timestamp offset (ties keep file order). */
  readonly notifications: readonly CompiledNotification[];
  /** Offset of the last notification (µs): how long the operation runs. */
  readonly durationUs: number;
  /** Offset of the `launched_at` the operation ends with (µs), when it launches the instance. */
  readonly launchOffsetUs: number | undefined;
  /** Offset of the instance's `created_at` (µs), when the template carries one. */
  readonly createdOffsetUs: number | undefined;
  /** Offset of the `deleted_at` the operation ends with (µs), when it deletes the instance. */
  readonly deleteOffsetUs: number | undefined;
  /**
   * A delete template whose sequence reaches `compute.instance.delete.end`: the instance is gone after
   * it. False for a delete that failed, as the captured `delete.start_7` does (an instance in error,
   * then Nova's `terminate_instance` error notification, no `shutdown.end` nor `delete.end`): Nova
   * leaves such an instance in ERROR, not deleted, and keeps auditing it. False for other operations.
   */
  readonly deletesInstance: boolean;
}

/** The templates of one directory, grouped the way the generator draws them. */
export interface TemplateSet {
  /** Create operations that launch the instance (end with a `launched_at`). */
  readonly creates: readonly CompiledTemplate[];
  /** Create operations that end in error (the instance never launches). */
  readonly failedCreates: readonly CompiledTemplate[];
  readonly deletes: readonly CompiledTemplate[];
  /** Every other operation, grouped by kind so each kind is equally likely whatever its file count. */
  readonly operations: ReadonlyMap<string, readonly CompiledTemplate[]>;
  readonly exists: CompiledTemplate;
}

const PLACEHOLDER = /\[\[\[\[([A-Za-z0-9_]+)\]\]\]\]/g;
const INDEXED = /^(UUID|XUUID|V4|V6|DT)_(\d+)$/;

/** The per-instance placeholders of the templates (`[[[[tenant_id]]]]` …), read from the attributes. */
export const INSTANCE_PLACEHOLDERS = [
  'tenant_id',
  'user_id',
  'display_name',
  'host',
  'hostname',
  'node',
  'publisher_id',
  'reservation_id',
  'image_name',
  'device_name',
] as const;

/**
 * Payload fields rebound to instance attributes wherever the template gives them a value: the
 * fields the usage audit compares, and the flavor and image facts that identify an instance.
 * Nova sends `''` for a launch time not set yet; those empty strings stay as they are.
 */
const INSTANCE_PAYLOAD_FIELDS: ReadonlySet<string> = new Set([
  // The anonymised captures sometimes hold a random id where the instance's own belongs.
  'tenant_id',
  'user_id',
  'display_name',
  'hostname',
  'reservation_id',
  'launched_at',
  'created_at',
  'instance_type_id',
  'instance_flavor_id',
  'instance_type',
  'memory_mb',
  'vcpus',
  'root_gb',
  'disk_gb',
  'ephemeral_gb',
  'os_type',
  'architecture',
]);

/** `payload.image_meta` keys rebound to the instance's image (attribute name `image_meta.<key>`). */
const INSTANCE_IMAGE_FIELDS: ReadonlySet<string> = new Set([
  'org.openstack__1__os_distro',
  'org.openstack__1__os_version',
  'org.openstack__1__architecture',
  'os_distro',
  'os_type',
]);

/** Payload fields of the end-of-day `.exists` that describe the audited day and the instance's fate. */
const EXISTS_PAYLOAD_FIELDS: ReadonlySet<string> = new Set([
  'audit_period_beginning',
  'audit_period_ending',
  'state',
  'deleted_at',
  'terminated_at',
]);

interface SlotLayout {
  uuid: number;
  xuuid: number;
  v4: number;
  v6: number;
  dt: number;
  dtCount: number;
}

function slotOf(kind: string, n: number, layout: SlotLayout, file: string): number {
  const [base, count] =
    kind === 'UUID'
      ? [layout.uuid, layout.xuuid - layout.uuid]
      : kind === 'XUUID'
        ? [layout.xuuid, layout.v4 - layout.xuuid]
        : kind === 'V4'
          ? [layout.v4, layout.v6 - layout.v4]
          : kind === 'V6'
            ? [layout.v6, layout.dt - layout.v6]
            : [layout.dt, layout.dtCount];
  if (n >= count)
    throw new InputError(`${file}: placeholder ${kind}_${n} beyond the ${count} the metadata declares`);
  return base + n;
}

/** A reference inside a string: a slot index, or the name of an instance attribute. */
type Ref = { slot: number } | { attr: string };

/** JS source reading a reference from the builder's arguments `s` (slots) and `a` (attributes). */
function refSource(r: Ref): string {
  return 'slot' in r ? `s[${r.slot}]` : `a[${JSON.stringify(r.attr)}]`;
}

/** JS source of a string with placeholders: a concatenation of its literal and looked-up segments. */
function stringSource(str: string, ctx: CompileContext): string {
  const parts: string[] = [];
  let last = 0;
  PLACEHOLDER.lastIndex = 0;
  for (let m = PLACEHOLDER.exec(str); m !== null; m = PLACEHOLDER.exec(str)) {
    if (m.index > last) parts.push(JSON.stringify(str.slice(last, m.index)));
    parts.push(refSource(ctx.reference(m[1]!)));
    last = m.index + m[0].length;
  }
  if (parts.length === 0) return JSON.stringify(str);
  if (last < str.length) parts.push(JSON.stringify(str.slice(last)));
  // A leading '' makes `+` concatenate even when an attribute holds a number.
  return parts.length === 1 ? parts[0]! : `(""+${parts.join('+')})`;
}

interface CompileContext {
  file: string;
  layout: SlotLayout;
  isExists: boolean;
  reference(name: string): Ref;
}

const attrSource = (name: string) => refSource({ attr: name });

/** The instance attribute a template value is rebound to, if any (see INSTANCE_PAYLOAD_FIELDS). */
function reboundAttr(value: unknown, path: readonly string[], ctx: CompileContext): string | undefined {
  const inPayload = path.length === 2 && path[0] === 'payload';
  const key = path[path.length - 1] ?? '';
  if (typeof value === 'string') {
    if (inPayload && ctx.isExists && EXISTS_PAYLOAD_FIELDS.has(key)) return key;
    // The `.exists` Nova sends before a rebuild, resize or rescue covers the current audit period so
    // far: it begins at the period's start (midnight, with daily audits) and ends at the operation.
    // The captures give the beginning as an offset from the operation, right only at the captured
    // time of day; elsewhere it lands on the previous day, in another audit stream (alone there: U8).
    if (inPayload && !ctx.isExists && key === 'audit_period_beginning' && value !== '')
      return 'current_period_beginning';
    // Rebind instance facts only where the template has a value: '' means "not set yet".
    if (inPayload && value !== '' && INSTANCE_PAYLOAD_FIELDS.has(key)) return key;
    if (
      path.length === 3 &&
      path[0] === 'payload' &&
      path[1] === 'image_meta' &&
      INSTANCE_IMAGE_FIELDS.has(key)
    ) {
      return `image_meta.${key}`;
    }
  }
  if (typeof value === 'number' && inPayload && INSTANCE_PAYLOAD_FIELDS.has(key)) return key;
  return undefined;
}

/**
 * JS source of an expression building `value`: object and array literals with constants inlined
 * (through JSON.stringify, so any template text is a safe literal) and placeholders as lookups.
 * V8 creates such literals from a boilerplate, several times faster than assigning keys in a loop.
 */
function valueSource(value: unknown, path: readonly string[], ctx: CompileContext): string {
  const attr = reboundAttr(value, path, ctx);
  if (attr !== undefined) return attrSource(attr);
  if (typeof value === 'string') return stringSource(value, ctx);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InputError(`${ctx.file}: non-finite number at ${path.join('.')}`);
    return JSON.stringify(value);
  }
  if (typeof value === 'boolean' || value === null) return JSON.stringify(value);
  if (Array.isArray(value)) {
    return `[${value.map((v, i) => valueSource(v, [...path, String(i)], ctx)).join(',')}]`;
  }
  if (typeof value === 'object') {
    const fields = Object.entries(value as Record<string, unknown>).map(([k, v]) => {
      // A literal "__proto__": would set the prototype; a computed key defines a plain property.
      const name = k === '__proto__' ? '["__proto__"]' : JSON.stringify(k);
      return `${name}:${valueSource(v, [...path, k], ctx)}`;
    });
    return `{${fields.join(',')}}`;
  }
  throw new InputError(`${ctx.file}: unexpected JSON value at ${path.join('.')}`);
}

/** A piece of a notification's JSON text: literal text, or JS source of a dynamic part. */
type Piece = { text: string } | { code: string };

/**
 * The JSON text of `value` as pieces: the constant parts pre-serialized, the placeholders as
 * lookups. Slot values (uuids, hex, addresses, datetimes) and the generator's attributes never
 * hold characters JSON escapes, so they are spliced in as they are; rebound attributes, which
 * may be numbers, go through JSON.stringify.
 */
function jsonPieces(value: unknown, path: readonly string[], ctx: CompileContext, out: Piece[]): void {
  const attr = reboundAttr(value, path, ctx);
  if (attr !== undefined) {
    out.push({ code: `JSON.stringify(${attrSource(attr)})` });
    return;
  }
  if (typeof value === 'string') {
    out.push({ text: '"' });
    let last = 0;
    PLACEHOLDER.lastIndex = 0;
    for (let m = PLACEHOLDER.exec(value); m !== null; m = PLACEHOLDER.exec(value)) {
      if (m.index > last) out.push({ text: JSON.stringify(value.slice(last, m.index)).slice(1, -1) });
      out.push({ code: refSource(ctx.reference(m[1]!)) });
      last = m.index + m[0].length;
    }
    if (last < value.length) out.push({ text: JSON.stringify(value.slice(last)).slice(1, -1) });
    out.push({ text: '"' });
    return;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
    out.push({ text: JSON.stringify(value) });
    return;
  }
  if (Array.isArray(value)) {
    out.push({ text: '[' });
    value.forEach((v, i) => {
      if (i > 0) out.push({ text: ',' });
      jsonPieces(v, [...path, String(i)], ctx, out);
    });
    out.push({ text: ']' });
    return;
  }
  if (typeof value === 'object') {
    out.push({ text: '{' });
    Object.entries(value as Record<string, unknown>).forEach(([k, v], i) => {
      out.push({ text: `${i > 0 ? ',' : ''}${JSON.stringify(k)}:` });
      jsonPieces(v, [...path, k], ctx, out);
    });
    out.push({ text: '}' });
    return;
  }
  throw new InputError(`${ctx.file}: unexpected JSON value at ${path.join('.')}`);
}

/** Compiles one notification body into an object builder and a JSON-text builder. */
function compileBuilders(body: unknown, ctx: CompileContext): { build: Builder; buildJson: JsonBuilder } {
  // Both sources hold only JSON literals and s[i] / a["name"] lookups, generated above.
  const build = new Function('s', 'a', `"use strict";return ${valueSource(body, [], ctx)};`) as Builder;
  const pieces: Piece[] = [];
  jsonPieces(body, [], ctx, pieces);
  // Merge neighbouring literals into one segment each: the text builder is one concatenation.
  const segments: string[] = [];
  let text = '';
  for (const p of pieces) {
    if ('text' in p) text += p.text;
    else {
      if (text) segments.push(JSON.stringify(text));
      text = '';
      segments.push(p.code);
    }
  }
  if (text) segments.push(JSON.stringify(text));
  const buildJson = new Function('s', 'a', `"use strict";return ""+${segments.join('+')};`) as JsonBuilder;
  return { build, buildJson };
}

function offsetOf(entry: unknown, file: string, key: string): number {
  if (!Array.isArray(entry) || entry.length !== 3 || !entry.every((x) => Number.isInteger(x))) {
    throw new InputError(`${file}: time_map entry ${key} is not [days, seconds, microseconds]`);
  }
  const [d, s, us] = entry as [number, number, number];
  return d * US_PER_DAY + s * US_PER_SECOND + us;
}

/** The DT index of a string that is exactly one `[[[[DT_n]]]]`, else undefined. */
function dtIndex(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^\[\[\[\[DT_(\d+)\]\]\]\]$/.exec(v);
  return m ? Number(m[1]) : undefined;
}

/**
 * Compiles one template (the parsed JSON array of a template file).
 * @param name the file name without `.json`; its part before the first `_` is the operation kind
 */
export function compileTemplate(name: string, doc: unknown): CompiledTemplate {
  const file = `${name}.json`;
  if (!Array.isArray(doc) || doc.length < 2 || typeof doc[0] !== 'object' || doc[0] === null) {
    throw new InputError(`${file}: expected [metadata, notification, …]`);
  }
  const meta = doc[0] as Record<string, unknown>;
  const count = (k: string): number => {
    const v = meta[k] ?? 0;
    if (!Number.isInteger(v) || (v as number) < 0)
      throw new InputError(`${file}: metadata ${k} is not a count`);
    return v as number;
  };
  const timeMap = (meta.time_map ?? {}) as Record<string, unknown>;
  const dtOffsets: number[] = [];
  for (const [key, entry] of Object.entries(timeMap)) {
    const m = /^\[\[\[\[DT_(\d+)\]\]\]\]$/.exec(key);
    if (!m) throw new InputError(`${file}: time_map key ${key} is not a [[[[DT_n]]]] placeholder`);
    dtOffsets[Number(m[1])] = offsetOf(entry, file, key);
  }
  for (let i = 0; i < dtOffsets.length; i++) if (dtOffsets[i] === undefined) dtOffsets[i] = Number.NaN;

  const uuidCount = count('uuid');
  const xuuidCount = count('xuuid');
  const v4Count = count('v4');
  const v6Count = count('v6');
  const layout: SlotLayout = {
    uuid: 0,
    xuuid: uuidCount,
    v4: uuidCount + xuuidCount,
    v6: uuidCount + xuuidCount + v4Count,
    dt: uuidCount + xuuidCount + v4Count + v6Count,
    dtCount: dtOffsets.length,
  };
  const operation =
    name === 'eod_exists'
      ? 'eod_exists'
      : name.slice(0, name.indexOf('_') < 0 ? name.length : name.indexOf('_'));
  const isExists = operation === 'eod_exists';

  const bodies = doc.slice(1) as Array<Record<string, unknown>>;
  let instanceSlot = -1;
  let launchOffsetUs: number | undefined;
  let createdOffsetUs: number | undefined;
  let deleteOffsetUs: number | undefined;
  const compiled: Array<CompiledNotification & { order: number }> = bodies.map((body, order) => {
    if (typeof body !== 'object' || body === null || typeof body.event_type !== 'string') {
      throw new InputError(`${file}: notification ${order + 1} has no event_type`);
    }
    const eventType = body.event_type;
    const tsIndex = dtIndex(body.timestamp);
    const tsOffset = tsIndex === undefined ? Number.NaN : dtOffsets[tsIndex];
    if (tsOffset === undefined || Number.isNaN(tsOffset)) {
      throw new InputError(
        `${file}: notification ${order + 1} has no timestamp placeholder with a time_map entry`,
      );
    }
    const payload = (body.payload ?? {}) as Record<string, unknown>;
    const inst =
      typeof payload.instance_id === 'string'
        ? /^\[\[\[\[UUID_(\d+)\]\]\]\]$/.exec(payload.instance_id)
        : null;
    if (inst) {
      const slot = slotOf('UUID', Number(inst[1]), layout, file);
      if (instanceSlot >= 0 && instanceSlot !== slot) {
        throw new InputError(`${file}: payload.instance_id uses two different placeholders`);
      }
      instanceSlot = slot;
    }
    // The last values a sequence leaves behind are the instance's state after the operation.
    const launched = dtIndex(payload.launched_at);
    if (launched !== undefined && !Number.isNaN(dtOffsets[launched] ?? Number.NaN))
      launchOffsetUs = dtOffsets[launched];
    const created = dtIndex(payload.created_at);
    if (created !== undefined && createdOffsetUs === undefined) createdOffsetUs = dtOffsets[created];
    const deleted = dtIndex(payload.deleted_at) ?? dtIndex(payload.terminated_at);
    if (deleted !== undefined && !Number.isNaN(dtOffsets[deleted] ?? Number.NaN))
      deleteOffsetUs = dtOffsets[deleted];

    const ctx: CompileContext = {
      file,
      layout,
      isExists,
      reference(ph) {
        const m = INDEXED.exec(ph);
        if (m) return { slot: slotOf(m[1]!, Number(m[2]), layout, file) };
        if (ph === 'publisher_id' && eventType.startsWith('scheduler.'))
          return { attr: 'scheduler_publisher_id' };
        if ((INSTANCE_PLACEHOLDERS as readonly string[]).includes(ph)) return { attr: ph };
        throw new InputError(`${file}: unknown placeholder [[[[${ph}]]]]`);
      },
    };
    return { eventType, offsetUs: tsOffset, ...compileBuilders(body, ctx), order };
  });
  compiled.sort((a, b) => a.offsetUs - b.offsetUs || a.order - b.order);
  // Some captured sequences run on into the instance's deletion (resize.confirm.start_12 ends with
  // delete.start … delete.end): in that capture the instance was deleted right after. Here an operation
  // is one step of a longer life, and deletion is a step of its own (the delete templates), so an
  // operation ends where a deletion starts; otherwise the instance would live on (later operations, an
  // `.exists` with no deleted_at) after a delete.end, and the usage audit would rightly call its day U6.
  if (!operation.startsWith('compute.instance.delete')) {
    const cut = compiled.findIndex((n) => n.eventType === 'compute.instance.delete.start');
    if (cut === 0)
      throw new InputError(`${file}: an operation template that starts by deleting the instance`);
    if (cut > 0) compiled.length = cut;
  }
  const notifications = compiled.map(({ eventType, offsetUs, build, buildJson }) => ({
    eventType,
    offsetUs,
    build,
    buildJson,
  }));
  return {
    name,
    operation,
    uuidCount,
    xuuidCount,
    v4Count,
    v6Count,
    dtOffsets,
    dtBase: layout.dt,
    slotCount: layout.dt + layout.dtCount,
    instanceSlot,
    notifications,
    durationUs: notifications[notifications.length - 1]!.offsetUs,
    launchOffsetUs: operation.startsWith('compute.instance.create') ? launchOffsetUs : undefined,
    createdOffsetUs,
    deleteOffsetUs: operation.startsWith('compute.instance.delete') ? deleteOffsetUs : undefined,
    deletesInstance:
      operation.startsWith('compute.instance.delete') &&
      notifications.some((n) => n.eventType === 'compute.instance.delete.end'),
  };
}

/** Groups compiled templates into the sets the generator draws from; throws if a set is empty. */
export function templateSet(templates: readonly CompiledTemplate[], where = 'templates'): TemplateSet {
  const creates: CompiledTemplate[] = [];
  const failedCreates: CompiledTemplate[] = [];
  const deletes: CompiledTemplate[] = [];
  const operations = new Map<string, CompiledTemplate[]>();
  let exists: CompiledTemplate | undefined;
  for (const t of [...templates].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (t.instanceSlot < 0)
      throw new InputError(`${t.name}.json: no notification carries payload.instance_id`);
    if (t.operation === 'eod_exists') exists = t;
    else if (t.operation.startsWith('compute.instance.create'))
      (t.launchOffsetUs === undefined ? failedCreates : creates).push(t);
    else if (t.operation.startsWith('compute.instance.delete')) deletes.push(t);
    else {
      const group = operations.get(t.operation) ?? [];
      group.push(t);
      operations.set(t.operation, group);
    }
  }
  if (!exists) throw new InputError(`${where}: no eod_exists.json`);
  if (creates.length === 0) throw new InputError(`${where}: no create template that launches an instance`);
  if (deletes.length === 0) throw new InputError(`${where}: no delete template`);
  return { creates, failedCreates, deletes, operations, exists };
}

/** The templates shipped with the generator (a copy of the StackTach notigen captures). */
// The templates are data, not code: tsc does not copy them to dist/. `src/notigen/` and
// `dist/notigen/` sit at the same depth, so this one path reaches the source copy from both.
export const DEFAULT_TEMPLATE_DIR: string = new URL('../../src/notigen/templates/', import.meta.url).pathname;

/** Reads and compiles every `*.json` template of a directory. */
export function loadTemplates(dir: string = DEFAULT_TEMPLATE_DIR): TemplateSet {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort();
  } catch (err) {
    throw new InputError(`cannot read the template directory ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const compiled = names.map((f) => {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    } catch (err) {
      throw new InputError(`${join(dir, f)}: ${(err as Error).message}`, { cause: err });
    }
    return compileTemplate(f.slice(0, -'.json'.length), doc);
  });
  return templateSet(compiled, dir);
}
