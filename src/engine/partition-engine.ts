import type { Event } from '../model/event.js';
import type { Instant } from '../timex/instant.js';
import type { DistinguishingValues, FireCriterion, TriggerDefinition } from '../triggers/types.js';
import type { Clock } from './clock.js';
import type { Effect, StreamId } from './effects.js';
import {
  EngineStateError,
  type PartitionSnapshot,
  type RecentRow,
  type StreamRow,
  validateRow,
} from './state.js';
import { TimerQueue } from './timer-queue.js';

/** Options of {@link PartitionEngine}. */
export interface PartitionEngineOptions {
  /** The compiled triggers this partition evaluates (names must be unique). */
  readonly triggers: readonly TriggerDefinition[];
  /** Where "now" comes from; see clock.ts. */
  readonly clock: Clock;
  /**
   * Prefix of the stream ids this engine allocates (`${idPrefix}${seq}`), e.g. `p7-` for
   * partition 7, so ids are unique across partitions. Default: empty.
   */
  readonly idPrefix?: string;
  /**
   * How long, in microseconds of engine time, the message ids of a closed stream are remembered: an
   * event arriving within that window with the message id of an event of a closed stream of the same
   * trigger and key is ignored as a duplicate, instead of opening a new stream (a producer's resend, or
   * the router's at-least-once redelivery after a crash). Default 0: message ids are remembered only
   * while their stream is live (or superseded by a newer stream of its key and waiting to close).
   */
  readonly duplicateWindow?: number;
}

/**
 * The message ids of the closed (or superseded) streams of one trigger and key, remembered until `due`
 * (a timer entry, so they are forgotten in time order whatever order they were remembered in).
 */
class RecentlyClosed {
  heapIndex = -1;
  constructor(
    /** Remembered until this time (inclusive). */
    public due: Instant,
    readonly seq: number,
    readonly slot: TriggerSlot,
    readonly key: string,
    public streamId: StreamId,
    public version: number,
    readonly ids: Set<string>,
  ) {}
}

/**
 * The µs timestamps of a trigger's live streams, one column per field, a stream's values at its
 * `ix`. A field of an object holding a number beyond the small-integer range (every µs timestamp)
 * points to a 16-byte heap number, 24 B in all; an array holding only numbers stores them unboxed,
 * 8 B each. Slots of closed streams are reused (a free list), so the columns are as long as the
 * most streams live at once.
 */
class TimeColumns {
  readonly first: number[] = [];
  readonly last: number[] = [];
  readonly expireAt: number[] = [];
  /** `Infinity` while not scheduled. */
  readonly fireAt: number[] = [];
  private readonly free: number[] = [];

  /** A slot for a new stream, with its first values. */
  alloc(first: number, last: number, expireAt: number, fireAt: number): number {
    const ix = this.free.pop();
    if (ix === undefined) {
      // Appending to every column keeps them dense (never holey) and equally long.
      this.first.push(first);
      this.last.push(last);
      this.expireAt.push(expireAt);
      this.fireAt.push(fireAt);
      return this.first.length - 1;
    }
    this.first[ix] = first;
    this.last[ix] = last;
    this.expireAt[ix] = expireAt;
    this.fireAt[ix] = fireAt;
    return ix;
  }

  /** Frees a closed stream's slot for reuse. */
  release(ix: number): void {
    this.free.push(ix);
  }
}

/** Per-trigger state: the definition and its live streams by distinguishing key. */
class TriggerSlot {
  /** The timestamps of this trigger's live streams (see {@link LiveStream}). */
  readonly times = new TimeColumns();
  /** The newest stream of each key; an older one may still wait in the timer queue to expire. */
  readonly streams = new Map<string, LiveStream>();
  /** Closed streams' message ids by key, within the duplicate window (see PartitionEngineOptions). */
  readonly recent = new Map<string, RecentlyClosed>();
  readonly criteria: readonly FireCriterion[];

  constructor(readonly def: TriggerDefinition) {
    this.criteria = def.fireCriteria;
  }
}

const NEVER = Number.POSITIVE_INFINITY;

/**
 * Makes V8 flatten a string built by concatenation (a "rope" of many pieces) in place. Keys and
 * message ids are kept for a stream's whole life; kept as ropes they cost ~5× the memory (a
 * 130-character canonical key measured 1.3 kB as a rope, 240 B flat). Reading one character is
 * enough to flatten, and is O(1) for a string that is already flat.
 */
function flatten(s: string): string {
  s.charCodeAt(0);
  return s;
}

/** Up to this many message ids a stream keeps in an array (scanned); beyond, in a Set. */
const SMALL_IDS = 8;

/**
 * What the engine keeps per stream: only what evaluation needs, in as few fields as possible, because
 * a worker holds hundreds of thousands of these (the target is ≤ 500 B per live stream, issue #7). No
 * events, no distinguishing values (the effects carry them to the store), the stream id only once a
 * second event needs it (see {@link PartitionEngine.idOf}), no stored due time (it is min(fireAt,
 * expireAt)), and the timestamps unboxed in the trigger's {@link TimeColumns} at `ix`. Message ids: a single one as the string itself, since many streams never see a second
 * event; a few in an array (a Set costs ~4× as much); a Set only beyond {@link SMALL_IDS}.
 */
class LiveStream {
  heapIndex = -1;
  /** Per-criterion counts; null while all are zero (allocated on the first matching event). */
  counts: number[] | null = null;
  /** The message ids in the stream, in arrival order: one string, an array, or a Set. */
  ids: string | string[] | Set<string> | null = null;
  version = 1;
  /**
   * The stream id: null until needed again after the stream opened (it is `${idPrefix}${seq}`), or
   * the id a restored row came with.
   */
  id: StreamId | null = null;
  /** Slot in `slot.times`; released when the stream closes (the object must not be used after). */
  readonly ix: number;

  constructor(
    readonly seq: number,
    readonly slot: TriggerSlot,
    readonly key: string,
    first: number,
    last: number,
    expireAt: number,
    fireAt: number,
  ) {
    this.ix = slot.times.alloc(first, last, expireAt, fireAt);
  }

  /** Earliest event timestamp. */
  get first(): number {
    return this.slot.times.first[this.ix] as number;
  }
  set first(t: number) {
    this.slot.times.first[this.ix] = t;
  }
  /** Latest event timestamp. */
  get last(): number {
    return this.slot.times.last[this.ix] as number;
  }
  set last(t: number) {
    this.slot.times.last[this.ix] = t;
  }
  get expireAt(): number {
    return this.slot.times.expireAt[this.ix] as number;
  }
  set expireAt(t: number) {
    this.slot.times.expireAt[this.ix] = t;
  }
  /** When it fires; `NEVER` while the fire criteria are unmet. */
  get fireAt(): number {
    return this.slot.times.fireAt[this.ix] as number;
  }
  set fireAt(t: number) {
    this.slot.times.fireAt[this.ix] = t;
  }

  /** min(fireAt, expireAt): when the timer queue must look at it. */
  get due(): number {
    const times = this.slot.times;
    return Math.min(times.fireAt[this.ix] as number, times.expireAt[this.ix] as number);
  }

  has(messageId: string): boolean {
    const ids = this.ids;
    if (typeof ids === 'string') return ids === messageId;
    if (ids === null) return false;
    if (Array.isArray(ids)) return ids.includes(messageId);
    return ids.has(messageId);
  }

  remember(messageId: string): void {
    flatten(messageId);
    const ids = this.ids;
    if (ids === null) this.ids = messageId;
    else if (typeof ids === 'string')
      this.ids = [ids, messageId]; // a literal: exactly 2 slots
    else if (Array.isArray(ids)) {
      const n = ids.length;
      if (n < SMALL_IDS) {
        // A new array of the exact size: push would grow the backing store to n + n/2 + 16 slots.
        const next = new Array<string>(n + 1);
        for (let i = 0; i < n; i++) next[i] = ids[i] as string;
        next[n] = messageId;
        this.ids = next;
      } else {
        const set = new Set(ids);
        set.add(messageId);
        this.ids = set;
      }
    } else ids.add(messageId);
  }

  /** The message ids, in arrival order (a copy, or the Set itself: callers only iterate). */
  idList(): Iterable<string> {
    const ids = this.ids;
    return ids === null ? [] : typeof ids === 'string' ? [ids] : ids;
  }
}

/**
 * The stream engine of one partition (a Kafka Streams "task"): a pure, deterministic state machine.
 *
 * Input is events already routed to a trigger and keyed (`addEvent`), or raw events matched against
 * every trigger (`add`, what replay uses), plus the passage of time (`advance`, the punctuation).
 * Output is a list of {@link Effect}s, collected until {@link takeEffects}: an adapter persists them
 * (checkpoint) and publishes fired/expired streams as batches.
 *
 * Semantics (SPEC §4, reference `trigger_manager.py` / `pipeline_manager.py` / `db/interface.py`):
 * - an event joins the live stream with the same trigger and key if that stream's expiration is
 *   still strictly after now; otherwise it opens a new stream (the old one waits to expire);
 * - an event whose message_id the stream already holds is ignored (never counted twice);
 * - first/last timestamps and the expiration are recomputed on every added event;
 * - fire criteria counts are updated per event; when every criterion has its `number` of matches
 *   and the stream is not yet scheduled, it is scheduled to fire at now + fire_delay;
 * - time passing fires streams whose fire time is strictly before now, and expires streams whose
 *   expiration is strictly before now; a stream that is due for both fires (the reference fires
 *   before it expires in the same pass). Streams close in (due time, sequence) order.
 *
 * Every call first lets the clock observe the event time and runs the due timers, so the same
 * input always produces the same effects with the same stream ids.
 */
export class PartitionEngine {
  private readonly slots = new Map<string, TriggerSlot>();
  private readonly slotList: TriggerSlot[] = [];
  private readonly timers = new TimerQueue<LiveStream>();
  private readonly clock: Clock;
  private readonly idPrefix: string;
  private effects: Effect[] = [];
  private nextSeq = 1;
  private current: Instant = Number.NEGATIVE_INFINITY;
  private readonly duplicateWindow: number;
  /** Every remembered key, by when it is forgotten. */
  private readonly recentTimers = new TimerQueue<RecentlyClosed>();
  private recentSeq = 0;
  /** Remembered entries created or extended since the last {@link takeRecentChanges}. */
  private readonly recentChanged = new Set<RecentlyClosed>();
  /** Whether {@link finishImport} (or importState) ended the import: no more rows may come. */
  private importDone = false;
  /** The highest sequence number imported (or named by a row of an unknown trigger). */
  private importMaxSeq = 0;
  /**
   * The live streams' sequence numbers, built only once a row comes out of ascending order (rows that
   * ascend cannot repeat one), to refuse a repeated sequence number. Dropped by finishImport.
   */
  private importSeqs: Set<number> | null = null;

  constructor(options: PartitionEngineOptions) {
    this.clock = options.clock;
    this.idPrefix = options.idPrefix ?? '';
    const window = options.duplicateWindow ?? 0;
    if (!Number.isFinite(window) || window < 0) {
      throw new EngineStateError(
        `duplicate window must be a non-negative number of microseconds, got ${window}`,
      );
    }
    this.duplicateWindow = window;
    for (const def of options.triggers) {
      if (this.slots.has(def.name))
        throw new EngineStateError(`duplicate trigger name ${JSON.stringify(def.name)}`);
      const slot = new TriggerSlot(def);
      this.slots.set(def.name, slot);
      this.slotList.push(slot);
    }
  }

  /** The engine's current time: the highest clock reading it has acted on. */
  get now(): Instant {
    return this.current;
  }

  /** Number of live (active) streams. */
  get activeStreams(): number {
    return this.timers.size;
  }

  /**
   * Live streams per trigger name (every configured trigger, zero included). One pass over the live
   * set: for restoring a count once (metrics keep it up to date from the effects), not per event.
   */
  activeStreamsByTrigger(): Map<string, number> {
    const out = new Map<string, number>();
    for (const slot of this.slotList) out.set(slot.def.name, 0);
    for (const s of this.timers.values()) {
      const name = s.slot.def.name;
      out.set(name, (out.get(name) ?? 0) + 1);
    }
    return out;
  }

  /** The trigger definitions, in configuration order. */
  get triggers(): readonly TriggerDefinition[] {
    return this.slotList.map((s) => s.def);
  }

  /**
   * Matches the event against every trigger and adds it to each one it matches (what replay and
   * a single-process deployment do). Returns the number of triggers it joined.
   */
  add(event: Event): number {
    const now = this.punctuate(event.timestamp);
    let joined = 0;
    for (const slot of this.slotList) {
      const m = slot.def.match(event, now);
      if (!m.matched) continue;
      this.join(slot, m.key, m.distinguishing, event, now);
      joined++;
    }
    return joined;
  }

  /**
   * Adds an event the router already matched and keyed for `triggerName` (one record of the
   * stream-events topic). Returns false, changing nothing, when the trigger is not configured here.
   */
  addEvent(triggerName: string, key: string, distinguishing: DistinguishingValues, event: Event): boolean {
    const slot = this.slots.get(triggerName);
    if (slot === undefined) return false;
    const now = this.punctuate(event.timestamp);
    this.join(slot, key, distinguishing, event, now);
    return true;
  }

  /**
   * Lets time pass: moves the engine to `now` (default: the clock's reading; never backwards) and
   * fires or expires every stream that became due. Returns how many streams closed.
   */
  advance(now: Instant = this.clock.now()): number {
    if (now > this.current) this.current = now;
    return this.runDue(this.current);
  }

  /** Returns the effects produced since the last call, oldest first, and forgets them. */
  takeEffects(): Effect[] {
    const out = this.effects;
    this.effects = [];
    return out;
  }

  /** The time the next stream becomes due (it closes once now is past it), or null if none. */
  nextDue(): Instant | null {
    const due = this.timers.peekDue();
    return due === NEVER ? null : due;
  }

  /** A copy of the live state, for a checkpoint or to hand the partition to another worker. */
  exportState(): PartitionSnapshot {
    const streams = [...this.timers.values()].sort((a, b) => a.seq - b.seq).map((s) => this.rowOf(s));
    return {
      nextSeq: this.nextSeq,
      now: this.current === Number.NEGATIVE_INFINITY ? null : this.current,
      streams,
      recent: [...this.recentTimers.values()].sort((a, b) => a.seq - b.seq).map((r) => this.recentRowOf(r)),
    };
  }

  /**
   * The remembered closed-stream message ids created or extended since the last call (to persist with a
   * checkpoint, so a new owner of the partition keeps dropping the same duplicates). Rows whose `until`
   * has passed may be deleted by the store.
   */
  takeRecentChanges(): RecentRow[] {
    const out: RecentRow[] = [];
    for (const r of this.recentChanged) out.push(this.recentRowOf(r));
    this.recentChanged.clear();
    return out;
  }

  /** Number of trigger/key pairs whose closed streams' message ids are remembered. */
  get rememberedKeys(): number {
    return this.recentTimers.size;
  }

  /**
   * The persisted form of the given live streams (e.g. those changed since the last checkpoint),
   * by ascending sequence; ids of streams no longer live are skipped. One pass over the live set.
   */
  exportStreams(ids: ReadonlySet<StreamId>): StreamRow[] {
    const out: LiveStream[] = [];
    const seqs = new Set<number>();
    for (const id of ids) {
      const seq = this.seqOf(id);
      if (seq !== null) seqs.add(seq);
    }
    for (const s of this.timers.values()) {
      const id = s.id;
      if (id === null ? seqs.has(s.seq) : ids.has(id)) out.push(s);
    }
    return out.sort((a, b) => a.seq - b.seq).map((s) => this.rowOf(s));
  }

  /**
   * Loads a partition's live streams into this (empty) engine, e.g. from Postgres on partition
   * assignment. Rows of triggers that are no longer configured are not loaded: a `streamErrored`
   * effect tells the adapter to mark them `error` (as the reference does when it meets a stream of
   * an unknown trigger). Throws {@link EngineStateError} for a corrupt snapshot.
   * Equivalent to {@link importStreams} of its streams, then {@link finishImport}.
   */
  importState(snapshot: PartitionSnapshot): void {
    if (this.timers.size > 0 || this.nextSeq !== 1 || this.importDone) {
      throw new EngineStateError('importState needs an engine that has not processed anything yet');
    }
    this.importStreams(snapshot.streams);
    this.finishImport(snapshot);
  }

  /**
   * Loads some of a partition's live streams into this engine before it processes anything: call it
   * once per chunk as the rows are read (in any order, across any number of calls), then
   * {@link finishImport} once. Keeps nothing of the rows but what a live stream needs, so a caller that
   * drops each chunk after this call never holds all of a large partition's rows at once.
   * Throws {@link EngineStateError} for a corrupt row (two rows with one sequence number included).
   */
  importStreams(rows: Iterable<StreamRow>): void {
    if (this.importDone || this.nextSeq !== 1) {
      throw new EngineStateError('importStreams needs an engine whose import is not finished');
    }
    for (const row of rows) {
      const slot = this.slots.get(row.trigger);
      if (slot === undefined) {
        this.effects.push({
          type: 'streamErrored',
          streamId: row.id,
          trigger: row.trigger,
          version: row.version + 1,
          state: 'error',
          reason: 'unknown_trigger',
        });
        if (row.seq > this.importMaxSeq) this.importMaxSeq = row.seq;
        continue;
      }
      validateRow(row, slot.def);
      let seen = this.importSeqs;
      if (seen === null && row.seq <= this.importMaxSeq) {
        seen = new Set();
        for (const other of this.timers.values()) seen.add(other.seq);
        this.importSeqs = seen;
      }
      if (seen !== null) {
        if (seen.has(row.seq)) throw new EngineStateError(`two streams with sequence number ${row.seq}`);
        seen.add(row.seq);
      }
      if (row.seq > this.importMaxSeq) this.importMaxSeq = row.seq;
      const s = new LiveStream(
        row.seq,
        slot,
        flatten(row.key),
        row.first,
        row.last,
        row.expireAt,
        row.fireAt ?? NEVER,
      );
      if (!this.isDefaultId(row.id, row.seq)) s.id = row.id;
      s.version = row.version;
      const crit = slot.criteria;
      let counts: number[] | null = null;
      for (let i = 0; i < crit.length; i++) {
        const n = Math.min(row.counts[i] as number, (crit[i] as FireCriterion).number);
        if (n > 0) {
          counts ??= new Array<number>(crit.length).fill(0);
          counts[i] = n;
        }
      }
      s.counts = counts;
      for (const id of row.messageIds) s.remember(id);
      // The newest stream of a key is the one joined; an older one only waits in the timer queue.
      const other = slot.streams.get(s.key);
      if (other === undefined || other.seq < s.seq) slot.streams.set(s.key, s);
      this.timers.push(s);
    }
  }

  /**
   * Ends an import begun with {@link importStreams} (or with none: an empty partition): the next stream
   * sequence number (at least one past every imported stream's), the clock reading the partition was
   * checkpointed at, and the remembered message ids of recently closed streams.
   */
  finishImport(state: Pick<PartitionSnapshot, 'nextSeq' | 'now' | 'recent'>): void {
    if (this.importDone || this.nextSeq !== 1) {
      throw new EngineStateError('finishImport: the import is already finished');
    }
    if (!Number.isSafeInteger(state.nextSeq) || state.nextSeq < 1) {
      throw new EngineStateError(`bad nextSeq ${state.nextSeq}`);
    }
    this.importDone = true;
    this.importSeqs = null;
    this.nextSeq = Math.max(state.nextSeq, this.importMaxSeq + 1);
    if (state.now !== null && state.now > this.current) this.current = state.now;
    for (const row of state.recent ?? []) {
      const slot = this.slots.get(row.trigger);
      if (slot === undefined || row.until < this.current) continue;
      this.remember(slot, row.key, row.streamId, row.version, row.until, row.messageIds);
    }
    this.recentChanged.clear();
  }

  // ---- internals --------------------------------------------------------------------------

  /**
   * The stream's id, kept from now on: a stream that takes a second event likely takes more, and
   * converting the sequence number for every event costs ~15% of the engine's throughput. A stream
   * that never does (most of a worker's live set) keeps no id string.
   */
  private idOf(s: LiveStream): StreamId {
    let id = s.id;
    if (id === null) {
      id = this.idPrefix + s.seq;
      s.id = id;
    }
    return id;
  }

  /** The stream's id without keeping it (for a stream about to close, or an export). */
  private peekId(s: LiveStream): StreamId {
    return s.id ?? this.idPrefix + s.seq;
  }

  /** The sequence number `id` names if it has the form `${idPrefix}${seq}`, else null. */
  /** Whether `id` is `${idPrefix}${seq}` (checked without building that string: once per restored row). */
  private isDefaultId(id: StreamId, seq: number): boolean {
    const start = this.idPrefix.length;
    const len = id.length;
    if (len === start || len - start > 16 || !id.startsWith(this.idPrefix)) return false;
    // No leading zero: `p0-07` is not the id of stream 7.
    if (id.charCodeAt(start) === 48 && len > start + 1) return false;
    let n = 0;
    for (let i = start; i < len; i++) {
      const d = id.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return false;
      n = n * 10 + d;
    }
    return n === seq;
  }

  private seqOf(id: StreamId): number | null {
    if (!id.startsWith(this.idPrefix)) return null;
    const digits = id.slice(this.idPrefix.length);
    const seq = Number(digits);
    return Number.isSafeInteger(seq) && String(seq) === digits ? seq : null;
  }

  /** Lets the clock see `eventTime`, then closes whatever became due. Returns the current time. */
  private punctuate(eventTime: Instant): Instant {
    const clock = this.clock;
    clock.observe(eventTime);
    const now = clock.now();
    if (now > this.current) this.current = now;
    if (this.timers.peekDue() < this.current) this.runDue(this.current);
    this.forgetRecent(this.current);
    return this.current;
  }

  /** Forgets remembered keys whose time ended before `now`. */
  private forgetRecent(now: Instant): void {
    const timers = this.recentTimers;
    for (;;) {
      if (!(timers.peekDue() < now)) return;
      const r = timers.pop() as RecentlyClosed;
      r.slot.recent.delete(r.key);
      this.recentChanged.delete(r);
    }
  }

  private remember(
    slot: TriggerSlot,
    key: string,
    streamId: StreamId,
    version: number,
    until: Instant,
    ids: Iterable<string>,
  ): void {
    let r = slot.recent.get(key);
    if (r === undefined) {
      r = new RecentlyClosed(until, ++this.recentSeq, slot, key, streamId, version, new Set(ids));
      slot.recent.set(key, r);
      this.recentTimers.push(r);
    } else {
      for (const id of ids) r.ids.add(id);
      r.streamId = streamId;
      r.version = version;
      if (until > r.due) {
        r.due = until;
        this.recentTimers.update(r);
      }
    }
    this.recentChanged.add(r);
  }

  private recentRowOf(r: RecentlyClosed): RecentRow {
    return {
      trigger: r.slot.def.name,
      key: r.key,
      streamId: r.streamId,
      version: r.version,
      until: r.due,
      messageIds: [...r.ids],
    };
  }

  private runDue(now: Instant): number {
    const timers = this.timers;
    let closed = 0;
    while (timers.peekDue() < now) {
      const s = timers.pop() as LiveStream;
      this.close(s, now);
      closed++;
    }
    this.forgetRecent(now);
    return closed;
  }

  private close(s: LiveStream, now: Instant): void {
    const def = s.slot.def;
    const fire = s.fireAt < now;
    const pipeline = fire ? def.firePipeline : def.expirePipeline;
    if (s.slot.streams.get(s.key) === s) s.slot.streams.delete(s.key);
    const id = this.peekId(s);
    s.version++;
    if (this.duplicateWindow > 0 && s.ids !== null) {
      this.remember(s.slot, s.key, id, s.version, now + this.duplicateWindow, s.idList());
    }
    this.effects.push({
      type: fire ? 'fired' : 'expired',
      streamId: id,
      trigger: def.name,
      version: s.version,
      key: s.key,
      pipeline,
      state: pipeline === null ? 'completed' : fire ? 'firing' : 'expiring',
      first: s.first,
      last: s.last,
      at: now,
      due: fire ? s.fireAt : s.expireAt,
    });
    s.slot.times.release(s.ix);
  }

  private join(
    slot: TriggerSlot,
    key: string,
    distinguishing: DistinguishingValues,
    event: Event,
    now: Instant,
  ): void {
    if (slot.recent.size > 0) {
      const r = slot.recent.get(key);
      if (r !== undefined && r.due >= now && r.ids.has(event.message_id)) {
        this.effects.push({
          type: 'duplicateIgnored',
          streamId: r.streamId,
          trigger: slot.def.name,
          version: r.version,
          messageId: event.message_id,
        });
        return;
      }
    }
    const s = slot.streams.get(key);
    if (s !== undefined) {
      // Also when the stream can take no more events (its expiration has passed, it waits to close): a
      // repeated message must not open the stream that would supersede it.
      if (s.has(event.message_id)) {
        this.effects.push({
          type: 'duplicateIgnored',
          streamId: this.idOf(s),
          trigger: slot.def.name,
          version: s.version,
          messageId: event.message_id,
        });
        return;
      }
      if (s.expireAt > now) {
        this.append(s, event, now);
        return;
      }
    }
    this.open(slot, key, distinguishing, event, now);
  }

  private open(
    slot: TriggerSlot,
    key: string,
    distinguishing: DistinguishingValues,
    event: Event,
    now: Instant,
  ): void {
    const ts = event.timestamp;
    // Computed before anything changes, so a throwing expiration leaves the engine untouched.
    const expireAt = slot.def.expiration(ts, ts, now);
    // A stream of the same key still waiting to close can take no more events: its message ids are
    // remembered now, so a duplicate of one of them is not counted in the new stream.
    const old = slot.streams.get(key);
    if (old?.ids != null) {
      this.remember(slot, key, this.peekId(old), old.version, old.due + this.duplicateWindow, old.idList());
    }
    const seq = this.nextSeq++;
    const s = new LiveStream(seq, slot, flatten(key), ts, ts, expireAt, NEVER);
    const id = this.idPrefix + seq;
    slot.streams.set(key, s);
    this.effects.push({
      type: 'streamOpened',
      streamId: id,
      trigger: slot.def.name,
      version: 1,
      key,
      distinguishing,
      first: ts,
      seq,
    });
    s.version = 2;
    s.remember(event.message_id);
    this.effects.push({
      type: 'eventAdded',
      streamId: id,
      trigger: slot.def.name,
      version: 2,
      event,
      first: ts,
      last: ts,
      expireAt,
    });
    this.evaluateFire(s, event, now, id);
    this.timers.push(s);
  }

  private append(s: LiveStream, event: Event, now: Instant): void {
    const ts = event.timestamp;
    const first = Math.min(ts, s.first);
    const last = Math.max(ts, s.last);
    const expireAt = s.slot.def.expiration(first, last, now);
    const due = s.due;
    const id = this.idOf(s);
    s.first = first;
    s.last = last;
    s.expireAt = expireAt;
    s.remember(event.message_id);
    s.version++;
    this.effects.push({
      type: 'eventAdded',
      streamId: id,
      trigger: s.slot.def.name,
      version: s.version,
      event,
      first,
      last,
      expireAt,
    });
    this.evaluateFire(s, event, now, id);
    if (s.due !== due) this.timers.update(s);
  }

  /** Counts the new event against each unmet criterion; schedules the fire when all are met. */
  private evaluateFire(s: LiveStream, event: Event, now: Instant, id: StreamId): void {
    if (s.fireAt !== NEVER) return;
    const criteria = s.slot.criteria;
    const n = criteria.length;
    // An empty fire_criteria list is met by any stream (the reference's should_fire is an `all`
    // over the criteria), so such a stream is scheduled on its first event.
    let counts = s.counts;
    let met = true;
    for (let i = 0; i < n; i++) {
      const c = criteria[i] as FireCriterion;
      const have = counts === null ? 0 : (counts[i] as number);
      if (have >= c.number) continue;
      if (c.matches(event)) {
        if (counts === null) {
          counts = new Array<number>(n).fill(0);
          s.counts = counts;
        }
        counts[i] = have + 1;
        if (have + 1 >= c.number) continue;
      }
      met = false;
    }
    if (!met) return;
    s.fireAt = now + s.slot.def.fireDelay;
    s.version++;
    this.effects.push({
      type: 'fireScheduled',
      streamId: id,
      trigger: s.slot.def.name,
      version: s.version,
      fireAt: s.fireAt,
    });
  }

  private rowOf(s: LiveStream): StreamRow {
    const n = s.slot.criteria.length;
    return {
      id: this.peekId(s),
      seq: s.seq,
      trigger: s.slot.def.name,
      key: s.key,
      first: s.first,
      last: s.last,
      expireAt: s.expireAt,
      fireAt: s.fireAt === NEVER ? null : s.fireAt,
      version: s.version,
      counts: s.counts === null ? new Array<number>(n).fill(0) : [...s.counts],
      messageIds: [...s.idList()],
    };
  }
}
