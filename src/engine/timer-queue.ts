/**
 * The punctuation queue of a partition: live streams ordered by when they next need attention
 * (the earlier of their fire time and their expiration), ties broken by stream sequence number so
 * the order is total and deterministic.
 *
 * An indexed binary min-heap: each entry remembers its own slot, so a stream whose expiration moves
 * (it is recomputed on every added event) is re-positioned in O(log n) instead of leaving stale
 * entries behind. One entry per live stream, never more.
 *
 * Each entry's `due` is copied into a number array parallel to the heap when it is pushed or updated:
 * comparisons read it there (unboxed, no property access), since `due` may be a getter computing it.
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
  /** `dues[i]` is `heap[i].due` as of its last push or update. */
  private readonly dues: number[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** When the entry due first is due (`Infinity` when empty). */
  peekDue(): number {
    return this.heap.length === 0 ? Number.POSITIVE_INFINITY : (this.dues[0] as number);
  }

  /** The entry due first, without removing it. */
  peek(): T | undefined {
    return this.heap[0];
  }

  push(entry: T): void {
    const i = this.heap.length;
    this.heap.push(entry);
    this.dues.push(entry.due);
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
    this.dues[i] = entry.due;
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
    const lastDue = this.dues.pop() as number;
    removed.heapIndex = -1;
    if (i === heap.length) return;
    heap[i] = last;
    this.dues[i] = lastDue;
    last.heapIndex = i;
    if (!this.up(i)) this.down(i);
  }

  /** Sifts up; returns whether the entry moved. */
  private up(i: number): boolean {
    const heap = this.heap;
    const dues = this.dues;
    const entry = heap[i] as T;
    const due = dues[i] as number;
    const start = i;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = heap[parentIndex] as T;
      const parentDue = dues[parentIndex] as number;
      // Strictly before the parent: (due, seq) order.
      if (!(due < parentDue || (due === parentDue && entry.seq < parent.seq))) break;
      heap[i] = parent;
      dues[i] = parentDue;
      parent.heapIndex = i;
      i = parentIndex;
    }
    heap[i] = entry;
    dues[i] = due;
    entry.heapIndex = i;
    return i !== start;
  }

  private down(i: number): void {
    const heap = this.heap;
    const dues = this.dues;
    const n = heap.length;
    const entry = heap[i] as T;
    const due = dues[i] as number;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let child = l;
      let childDue = dues[l] as number;
      if (r < n) {
        const rDue = dues[r] as number;
        if (rDue < childDue || (rDue === childDue && (heap[r] as T).seq < (heap[l] as T).seq)) {
          child = r;
          childDue = rDue;
        }
      }
      const c = heap[child] as T;
      if (!(childDue < due || (childDue === due && c.seq < entry.seq))) break;
      heap[i] = c;
      dues[i] = childDue;
      c.heapIndex = i;
      i = child;
    }
    heap[i] = entry;
    dues[i] = due;
    entry.heapIndex = i;
  }
}
