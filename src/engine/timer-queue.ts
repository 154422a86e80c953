/**
 * The punctuation queue of a partition: live streams ordered by when they next need attention
 * (the earlier of their fire time and their expiration), ties broken by stream sequence number so
 * the order is total and deterministic.
 *
 * An indexed binary min-heap: each entry remembers its own slot, so a stream whose expiration moves
 * (it is recomputed on every added event) is re-positioned in O(log n) instead of leaving stale
 * entries behind. One entry per live stream, never more.
 */
export interface TimerEntry {
  /** When the entry is due (microseconds); `Infinity` if never. Read only by the queue (may be a getter). */
  readonly due: number;
  /** Tie-breaker: the stream's sequence number (unique within the partition). */
  readonly seq: number;
  /** Slot in the heap array, or -1 when not queued. Owned by the queue. */
  heapIndex: number;
}

export class TimerQueue<T extends TimerEntry> {
  private readonly heap: T[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** The entry due first, without removing it. */
  peek(): T | undefined {
    return this.heap[0];
  }

  push(entry: T): void {
    const i = this.heap.length;
    this.heap.push(entry);
    entry.heapIndex = i;
    this.up(i);
  }

  /** Removes and returns the entry due first. */
  pop(): T | undefined {
    const heap = this.heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    this.removeAt(0);
    return top;
  }

  /** Removes an entry wherever it is. */
  remove(entry: T): void {
    if (entry.heapIndex >= 0) this.removeAt(entry.heapIndex);
  }

  /** Re-positions an entry after its `due` changed. */
  update(entry: T): void {
    const i = entry.heapIndex;
    if (i < 0) return;
    if (!this.up(i)) this.down(i);
  }

  /** Every queued entry, in heap (not due) order. */
  values(): readonly T[] {
    return this.heap;
  }

  private removeAt(i: number): void {
    const heap = this.heap;
    const removed = heap[i] as T;
    const last = heap.pop() as T;
    removed.heapIndex = -1;
    if (i === heap.length) return;
    heap[i] = last;
    last.heapIndex = i;
    if (!this.up(i)) this.down(i);
  }

  private static before(a: TimerEntry, b: TimerEntry): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  /** Sifts up; returns whether the entry moved. */
  private up(i: number): boolean {
    const heap = this.heap;
    const entry = heap[i] as T;
    const start = i;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = heap[parentIndex] as T;
      if (!TimerQueue.before(entry, parent)) break;
      heap[i] = parent;
      parent.heapIndex = i;
      i = parentIndex;
    }
    heap[i] = entry;
    entry.heapIndex = i;
    return i !== start;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const entry = heap[i] as T;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let child = l;
      if (r < n && TimerQueue.before(heap[r] as T, heap[l] as T)) child = r;
      const c = heap[child] as T;
      if (!TimerQueue.before(c, entry)) break;
      heap[i] = c;
      c.heapIndex = i;
      i = child;
    }
    heap[i] = entry;
    entry.heapIndex = i;
  }
}
