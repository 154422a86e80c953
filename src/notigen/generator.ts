/**
 * A seeded workload generator in the spirit of StackTach's notigen: it simulates a fleet of Nova
 * instances over some days and streams the notifications they would emit, in timestamp order.
 *
 * Each instance is created on the first day (a few creations fail and stop there), then gets a
 * random number of operations per day (resize, rebuild, reboot, power off, snapshot, rescue, …) at
 * random non-overlapping times, is sometimes deleted, and after every day it lived through emits
 * the end-of-day `compute.instance.exists` whose audit period is exactly that day (00:00 to the
 * next 00:00). An instance keeps its id, tenant, host, flavor, image and launch time across all its
 * operations, so the usage-audit trigger of StackTach (per instance and day, fire on the exists)
 * sees coherent streams.
 *
 * Unlike the original, nothing depends on the wall clock or on `Math.random`: the same options
 * give the same output, byte for byte. Memory is proportional to the number of instances, not to
 * the number of notifications: each instance keeps only its current operation, the instances are
 * merged through a heap, and notification objects are built when they are emitted.
 */
import { UsageError } from '../errors.js';
import { type Instant, parseDatetime, US_PER_DAY, US_PER_MINUTE, US_PER_SECOND } from '../timex/instant.js';
import { Prng } from './prng.js';
import { type Attrs, type CompiledTemplate, loadTemplates, type TemplateSet } from './template.js';

/** Options of {@link generateNotifications}; every field has a default. */
export interface GenerateOptions {
  /** PRNG seed (integer); default 1. */
  seed?: number;
  /** Number of simulated instances; default 10. */
  instances?: number;
  /** Number of simulated days; default 1. */
  days?: number;
  /** First day, as an Instant or a date/datetime string; floored to 00:00 UTC. Default 2015-02-01. */
  start?: Instant | string;
  /** Mean number of operations per instance per day (Poisson); default 2. */
  operationsPerDay?: number;
  /** Probability that a live instance is deleted on a given day after its creation day; default 0.05. */
  deleteRate?: number;
  /** Fraction of instances whose creation fails (they emit the failed create and nothing more); default 0.05. */
  failedCreateRate?: number;
  /** Probability that a notification is emitted twice with the same message_id (a redelivery); default 0. */
  duplicates?: number;
  /** Fraction of notifications wrapped in the oslo.messaging v2 envelope; default 0. */
  osloEnvelope?: number;
  /** Stop after this many notifications (duplicates included); default: no limit. */
  count?: number;
  /** Compiled templates; default: the ones shipped in `src/notigen/templates`. */
  templates?: TemplateSet;
}

/** Counters of one generation run (updated as the iterator is consumed). */
export interface GenerationStats {
  notifications: number;
  duplicates: number;
  enveloped: number;
  operations: number;
  instancesCreated: number;
  instancesFailed: number;
  instancesDeleted: number;
  /** Deletes that failed (the instance stays, in ERROR; see CompiledTemplate.deletesInstance). */
  deletesFailed: number;
  exists: number;
}

/** A generated notification: a Nova notification, or an oslo v2 envelope around one. */
export type Notification = Record<string, unknown>;

/** Default first day of the simulation. */
export const DEFAULT_START = '2015-02-01';

/** Ops of a day run after the end-of-day `.exists` of the previous day, which comes in this window. */
const EXISTS_WINDOW_US = 15 * US_PER_MINUTE;
/** Idle gap between two operations of one instance (upper bound, seconds). */
const MAX_GAP_S = 120;

interface Flavor {
  instance_type_id: number;
  instance_flavor_id: string;
  instance_type: string;
  memory_mb: number;
  vcpus: number;
  root_gb: number;
  disk_gb: number;
  ephemeral_gb: number;
}

const FLAVORS: readonly Flavor[] = [
  ['512MB Standard Instance', 2, '2', 512, 1, 20, 0],
  ['1GB Standard Instance', 3, '3', 1024, 1, 40, 0],
  ['2GB Standard Instance', 4, '4', 2048, 2, 80, 0],
  ['15GB Standard Instance', 7, '7', 15360, 6, 620, 0],
  ['4 GB Performance', 11, 'performance1-4', 4096, 4, 40, 40],
  ['60 GB Performance', 15, 'performance2-60', 61440, 16, 40, 600],
].map(([name, id, fid, mem, cpus, root, eph]) => ({
  instance_type_id: id as number,
  instance_flavor_id: fid as string,
  instance_type: name as string,
  memory_mb: mem as number,
  vcpus: cpus as number,
  root_gb: root as number,
  disk_gb: (root as number) + (eph as number),
  ephemeral_gb: eph as number,
}));

const IMAGES: ReadonlyArray<Readonly<Record<string, string>>> = [
  { distro: 'com.ubuntu', version: '12.04', os: 'ubuntu', type: 'linux', arch: 'x64' },
  { distro: 'com.ubuntu', version: '14.04', os: 'ubuntu', type: 'linux', arch: 'x64' },
  { distro: 'org.centos', version: '6.5', os: 'centos', type: 'linux', arch: 'x64' },
  { distro: 'org.debian', version: '7', os: 'debian', type: 'linux', arch: 'x64' },
  { distro: 'com.microsoft.server', version: '2012.0', os: 'windows', type: 'windows', arch: 'x64' },
];

const TWO_DIGITS: readonly string[] = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));

// Formatting runs once per datetime placeholder of every operation: cache the date part per day.
let cachedDay = Number.NaN;
let cachedDayPrefix = '';

/** Nova's notification datetime form: `2015-02-01 13:45:02.123456` (UTC, always six digits). */
export function formatNovaDatetime(t: Instant): string {
  const day = Math.floor(t / US_PER_DAY);
  if (day !== cachedDay) {
    cachedDay = day;
    cachedDayPrefix = `${new Date(day * 86_400_000).toISOString().slice(0, 10)} `;
  }
  const inDay = t - day * US_PER_DAY;
  const secs = Math.floor(inDay / US_PER_SECOND);
  const us = inDay - secs * US_PER_SECOND;
  const h = Math.floor(secs / 3600);
  const m = Math.floor(secs / 60) % 60;
  const usText = us >= 100_000 ? String(us) : String(us).padStart(6, '0');
  return `${cachedDayPrefix}${TWO_DIGITS[h]}:${TWO_DIGITS[m]}:${TWO_DIGITS[secs % 60]}.${usText}`;
}

/** Audit periods are whole days; Nova prints them without a fraction: `2015-02-01 00:00:00`. */
function formatMidnight(t: Instant): string {
  return formatNovaDatetime(t).slice(0, 19);
}

type Step = { kind: 'create' | 'op' | 'delete'; start: Instant; template: CompiledTemplate } | ExistsStep;
interface ExistsStep {
  kind: 'exists';
  start: Instant;
  template: CompiledTemplate;
  dayStart: Instant;
}

/** One simulated instance: plans its days lazily and emits its own notifications in time order. */
class InstanceSim {
  readonly index: number;
  /** Timestamp of the next notification (µs); meaningless once `done`. */
  nextTime = 0;
  done = false;
  private readonly rng: Prng;
  private readonly attrs: Attrs;
  private readonly instanceId: string;
  private readonly plan: Step[] = [];
  private day = 0;
  private failed = false;
  private deleted = false;
  /** A delete failed: the instance is in ERROR and only a delete (retried on later days) touches it. */
  private errored = false;
  private created = false;
  // The operation being emitted.
  private template!: CompiledTemplate;
  private opStart = 0;
  private slots: string[] = [];
  private idx = 0;

  constructor(
    index: number,
    private readonly g: NotificationGenerator,
  ) {
    this.index = index;
    this.rng = new Prng(g.seed, index + 1);
    const r = this.rng;
    this.instanceId = r.uuid4();
    const flavor = r.pick(FLAVORS);
    const image = r.pick(IMAGES);
    const host = `compute-${r.range(1, 400).toString().padStart(3, '0')}`;
    this.attrs = {
      tenant_id: String(100000 + r.int(899999)),
      user_id: String(100000 + r.int(899999)),
      display_name: `Instance_${r.int(899999)}`,
      host,
      hostname: `server-${r.int(899999)}`,
      node: `${host}.example.net`,
      publisher_id: `compute.${host}`,
      scheduler_publisher_id: `scheduler.scheduler-${r.range(1, 4)}`,
      reservation_id: `r-${r.hex32().slice(0, 8)}`,
      image_name: `${image.os}-${image.version}`,
      device_name: `/dev/xvd${'abcdefgh'[r.int(8)]}`,
      ...flavor,
      os_type: image.type,
      architecture: image.arch,
      'image_meta.org.openstack__1__os_distro': image.distro,
      'image_meta.org.openstack__1__os_version': image.version,
      'image_meta.org.openstack__1__architecture': image.arch,
      'image_meta.os_distro': image.os,
      'image_meta.os_type': image.type,
      launched_at: '',
      created_at: '',
      state: 'active',
      deleted_at: '',
      terminated_at: '',
      audit_period_beginning: '',
      audit_period_ending: '',
      current_period_beginning: '',
    };
    this.advance();
  }

  /** Builds the current notification (as an object, or as JSON text) and moves on to the next. */
  emit(asJson: boolean): Notification | string {
    const note = this.template.notifications[this.idx]!;
    const n = asJson
      ? note.buildJson(this.slots, this.attrs)
      : (note.build(this.slots, this.attrs) as Notification);
    this.idx++;
    if (this.idx < this.template.notifications.length) {
      this.nextTime = this.opStart + this.template.notifications[this.idx]!.offsetUs;
    } else {
      this.advance();
    }
    return n;
  }

  /** Starts the next planned step, planning the next day when today's plan is used up. */
  private advance(): void {
    while (this.plan.length === 0) {
      if (this.failed || this.deleted || this.day >= this.g.days) {
        this.done = true;
        return;
      }
      this.planDay(this.day++);
    }
    const step = this.plan.shift()!;
    this.begin(step);
  }

  private planDay(d: number): void {
    const g = this.g;
    const r = this.rng;
    const dayStart = g.start + d * US_PER_DAY;
    const dayEnd = dayStart + US_PER_DAY;
    // Leave a second before midnight so the day's last operation ends inside the day.
    const latest = dayEnd - US_PER_SECOND;
    let free = d === 0 ? dayStart : dayStart + EXISTS_WINDOW_US;
    const fits = (t: CompiledTemplate, start: Instant) => start + t.durationUs <= latest;

    if (!this.created) {
      this.created = true;
      const failing = g.templates.failedCreates.length > 0 && r.chance(g.failedCreateRate);
      const t = r.pick(failing ? g.templates.failedCreates : g.templates.creates);
      // Creations are spread over the first part of the day so that most instances live most of it.
      const span = Math.max(0, latest - t.durationUs - free);
      const start = free + Math.floor(r.float() * Math.min(span, US_PER_DAY / 2));
      this.plan.push({ kind: 'create', start, template: t });
      free = start + t.durationUs + r.range(1, MAX_GAP_S) * US_PER_SECOND;
      if (failing) return;
    }

    const kinds = g.operationKinds;
    // Nova refuses an instance in ERROR most actions but a delete.
    const n = this.errored ? 0 : r.poisson(g.operationsPerDay);
    const times: number[] = [];
    for (let i = 0; i < n; i++) times.push(free + Math.floor(r.float() * Math.max(0, latest - free)));
    times.sort((a, b) => a - b);
    for (const at of times) {
      const t = r.pick(g.templates.operations.get(r.pick(kinds))!);
      const start = Math.max(at, free);
      if (!fits(t, start)) continue;
      this.plan.push({ kind: 'op', start, template: t });
      free = start + t.durationUs + r.range(1, MAX_GAP_S) * US_PER_SECOND;
    }
    if (d > 0 && r.chance(g.deleteRate)) {
      const t = r.pick(g.templates.deletes);
      const start = free + Math.floor(r.float() * Math.max(0, latest - t.durationUs - free));
      if (fits(t, start)) {
        this.plan.push({ kind: 'delete', start, template: t });
        free = start + t.durationUs;
      }
    }
    // The audit runs shortly after midnight: its .exists covers the day just ended.
    const existsAt =
      dayEnd +
      r.range(1, Math.floor(EXISTS_WINDOW_US / US_PER_SECOND) - 60) * US_PER_SECOND +
      r.int(1_000_000);
    this.plan.push({ kind: 'exists', start: existsAt, template: g.templates.exists, dayStart });
  }

  private begin(step: Step): void {
    const t = step.template;
    const r = this.rng;
    const a = this.attrs;
    const g = this.g;
    g.stats.operations++;
    switch (step.kind) {
      case 'create':
        a.created_at = formatNovaDatetime(step.start + (t.createdOffsetUs ?? 0));
        if (t.launchOffsetUs === undefined) {
          this.failed = true;
          a.state = 'error';
          g.stats.instancesFailed++;
        } else {
          a.launched_at = formatNovaDatetime(step.start + t.launchOffsetUs);
          g.stats.instancesCreated++;
        }
        break;
      case 'delete': {
        if (!t.deletesInstance) {
          this.errored = true;
          a.state = 'error';
          g.stats.deletesFailed++;
          break;
        }
        this.deleted = true;
        const at = formatNovaDatetime(step.start + (t.deleteOffsetUs ?? t.durationUs));
        a.state = 'deleted';
        a.deleted_at = at;
        a.terminated_at = at;
        g.stats.instancesDeleted++;
        break;
      }
      case 'exists':
        a.audit_period_beginning = formatMidnight(step.dayStart);
        a.audit_period_ending = formatMidnight(step.dayStart + US_PER_DAY);
        g.stats.exists++;
        break;
      default:
        break;
    }
    // The audit period an operation's own `.exists` covers began at the midnight before it.
    if (step.kind !== 'exists')
      a.current_period_beginning = formatMidnight(step.start - (step.start % US_PER_DAY));
    // Fill the slots: UUID, XUUID, V4, V6, DT (see CompiledTemplate.dtBase).
    const slots = new Array<string>(t.slotCount);
    let i = 0;
    for (let k = 0; k < t.uuidCount; k++) slots[i++] = r.uuid4();
    for (let k = 0; k < t.xuuidCount; k++) slots[i++] = r.hex32();
    for (let k = 0; k < t.v4Count; k++)
      slots[i++] = `${r.range(10, 223)}.${r.int(256)}.${r.int(256)}.${r.range(1, 254)}`;
    for (let k = 0; k < t.v6Count; k++) {
      let v6 = '';
      for (let j = 0; j < 8; j++) v6 += (j ? ':' : '') + r.int(65536).toString(16).padStart(4, '0');
      slots[i++] = v6;
    }
    const offsets = t.dtOffsets;
    for (let k = 0; k < offsets.length; k++) {
      const off = offsets[k]!;
      slots[i++] = Number.isNaN(off) ? '' : formatNovaDatetime(step.start + off);
    }
    slots[t.instanceSlot] = this.instanceId;
    this.template = t;
    this.opStart = step.start;
    this.slots = slots;
    this.idx = 0;
    this.nextTime = step.start + t.notifications[0]!.offsetUs;
  }
}

/** Binary min-heap of instances keyed by (next timestamp, instance index): a deterministic merge. */
class SimHeap {
  private readonly items: InstanceSim[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): InstanceSim | undefined {
    return this.items[0];
  }

  private static less(a: InstanceSim, b: InstanceSim): boolean {
    return a.nextTime < b.nextTime || (a.nextTime === b.nextTime && a.index < b.index);
  }

  push(s: InstanceSim): void {
    const h = this.items;
    h.push(s);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!SimHeap.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  /** Restores the heap after the top's key grew (or removes it when done). */
  fixTop(): void {
    const h = this.items;
    if (h[0]!.done) {
      const last = h.pop()!;
      if (h.length === 0) return;
      h[0] = last;
    }
    let i = 0;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      const rr = l + 1;
      let m = i;
      if (l < n && SimHeap.less(h[l]!, h[m]!)) m = l;
      if (rr < n && SimHeap.less(h[rr]!, h[m]!)) m = rr;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

function checkCount(name: string, v: number, min: number): number {
  if (!Number.isSafeInteger(v) || v < min)
    throw new UsageError(`${name} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

function checkRate(name: string, v: number): number {
  if (!(v >= 0 && v <= 1)) throw new UsageError(`${name} must be between 0 and 1, got ${v}`);
  return v;
}

/**
 * A configured generation run. Iterate it (sync or async) to get the notifications; `stats`
 * counts what has been produced so far. Iterating twice restarts from the beginning and yields
 * the same sequence.
 */
export class NotificationGenerator implements Iterable<Notification>, AsyncIterable<Notification> {
  readonly seed: number;
  readonly instances: number;
  readonly days: number;
  /** 00:00 UTC of the first day. */
  readonly start: Instant;
  readonly operationsPerDay: number;
  readonly deleteRate: number;
  readonly failedCreateRate: number;
  readonly duplicates: number;
  readonly osloEnvelope: number;
  readonly count: number;
  readonly templates: TemplateSet;
  /** The operation kinds drawn from (each kind equally likely). */
  readonly operationKinds: readonly string[];
  stats: GenerationStats = NotificationGenerator.freshStats();

  constructor(options: GenerateOptions = {}) {
    this.seed = checkCount('seed', options.seed ?? 1, Number.MIN_SAFE_INTEGER);
    this.instances = checkCount('instances', options.instances ?? 10, 0);
    this.days = checkCount('days', options.days ?? 1, 1);
    const start = options.start ?? DEFAULT_START;
    let t: Instant;
    try {
      t = typeof start === 'number' ? start : parseDatetime(start);
    } catch (err) {
      throw new UsageError(`start: ${(err as Error).message}`, { cause: err });
    }
    this.start = Math.floor(t / US_PER_DAY) * US_PER_DAY;
    const ops = options.operationsPerDay ?? 2;
    if (!(ops >= 0 && ops <= 50))
      throw new UsageError(`operationsPerDay must be between 0 and 50, got ${ops}`);
    this.operationsPerDay = ops;
    this.deleteRate = checkRate('deleteRate', options.deleteRate ?? 0.05);
    this.failedCreateRate = checkRate('failedCreateRate', options.failedCreateRate ?? 0.05);
    this.duplicates = checkRate('duplicates', options.duplicates ?? 0);
    this.osloEnvelope = checkRate('osloEnvelope', options.osloEnvelope ?? 0);
    this.count =
      options.count === undefined ? Number.POSITIVE_INFINITY : checkCount('count', options.count, 0);
    this.templates = options.templates ?? loadTemplates();
    this.operationKinds = [...this.templates.operations.keys()];
    if (this.operationKinds.length === 0 && this.operationsPerDay > 0) {
      throw new UsageError('the templates have no operation besides create, delete and exists');
    }
  }

  private static freshStats(): GenerationStats {
    return {
      notifications: 0,
      duplicates: 0,
      enveloped: 0,
      operations: 0,
      instancesCreated: 0,
      instancesFailed: 0,
      instancesDeleted: 0,
      deletesFailed: 0,
      exists: 0,
    };
  }

  *[Symbol.iterator](): Iterator<Notification> {
    yield* this.run(false) as Iterable<Notification>;
  }

  /**
   * The same sequence as JSON text, one notification per string (no newline): what
   * `JSON.stringify` of each object gives, built straight from the pre-serialized templates,
   * several times faster than building objects and stringifying them.
   */
  *lines(): Iterable<string> {
    yield* this.run(true) as Iterable<string>;
  }

  private *run(asJson: boolean): Iterable<Notification | string> {
    this.stats = NotificationGenerator.freshStats();
    const stats = this.stats;
    // Decisions about the stream as a whole (duplicates, envelopes) use their own sequence so
    // that changing a rate does not change the simulated fleet.
    const rng = new Prng(this.seed, 0);
    const heap = new SimHeap();
    for (let i = 0; i < this.instances; i++) {
      const s = new InstanceSim(i, this);
      if (!s.done) heap.push(s);
    }
    const limit = this.count;
    const dup = this.duplicates;
    const env = this.osloEnvelope;
    while (heap.size > 0 && stats.notifications < limit) {
      const sim = heap.peek()!;
      let n = sim.emit(asJson);
      heap.fixTop();
      if (env > 0 && rng.float() < env) {
        const message = typeof n === 'string' ? n : JSON.stringify(n);
        const envelope = { 'oslo.version': '2.0', 'oslo.message': message };
        n = asJson ? JSON.stringify(envelope) : envelope;
        stats.enveloped++;
      }
      stats.notifications++;
      yield n;
      if (dup > 0 && stats.notifications < limit && rng.float() < dup) {
        // A redelivery: the same message again, right behind the original (same timestamp, so the
        // stream stays in timestamp order). Objects are deep-copied so a consumer may mutate either.
        stats.notifications++;
        stats.duplicates++;
        yield typeof n === 'string' ? n : structuredClone(n);
      }
    }
  }

  /** The same sequence as the sync iterator, yielding to the event loop every few thousand items. */
  async *[Symbol.asyncIterator](): AsyncIterator<Notification> {
    let i = 0;
    for (const n of this) {
      yield n;
      if (++i % 4096 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

/** Convenience: a {@link NotificationGenerator} for the options (iterate it sync or async). */
export function generateNotifications(options: GenerateOptions = {}): NotificationGenerator {
  return new NotificationGenerator(options);
}
