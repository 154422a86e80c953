/**
 * Pure statistics for the benchmarks: percentiles of raw samples, quantiles of a Prometheus histogram
 * (as `histogram_quantile` computes them), and throughput over time from progress samples.
 */

/** Summary of a sample of durations or rates. All fields NaN for an empty sample. */
export interface Summary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * The `p`-th percentile (0 ≤ p ≤ 100) of an ascending sample, nearest-rank: the smallest value with at
 * least p% of the sample at or below it (so p99 of 100 values is the 99th, never an interpolation
 * between two observations). NaN for an empty sample.
 * @throws RangeError for p outside [0, 100].
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[rank - 1] as number;
}

/** Count, min, mean, p50, p90, p99 and max of a sample (any order; not modified). */
export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: n,
    min: n === 0 ? Number.NaN : (sorted[0] as number),
    mean: n === 0 ? Number.NaN : sum / n,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: n === 0 ? Number.NaN : (sorted[n - 1] as number),
  };
}

/** One cumulative bucket of a Prometheus histogram: observations ≤ `le`. */
export interface Bucket {
  le: number;
  count: number;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of a cumulative histogram, interpolated linearly inside the bucket it
 * falls in, as Prometheus' `histogram_quantile` does (the first bucket is taken to start at 0; a
 * quantile in the +Inf bucket is reported as the highest finite bound). NaN when it holds nothing.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be within 0..1, got ${q}`);
  const b = [...buckets].sort((x, y) => x.le - y.le);
  const total = b.length === 0 ? 0 : (b[b.length - 1] as Bucket).count;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const bucket of b) {
    if (bucket.count >= rank) {
      if (bucket.le === Number.POSITIVE_INFINITY) return prevLe;
      const inBucket = bucket.count - prevCount;
      if (inBucket === 0) return bucket.le;
      return prevLe + (bucket.le - prevLe) * ((rank - prevCount) / inBucket);
    }
    prevLe = bucket.le;
    prevCount = bucket.count;
  }
  return prevLe;
}

/** A histogram read from the Prometheus text exposition, its label sets added together. */
export interface ParsedHistogram {
  buckets: Bucket[];
  sum: number;
  count: number;
}

/**
 * Reads histogram `name` (its `_bucket`, `_sum` and `_count` lines) from Prometheus text exposition,
 * adding all label sets together (e.g. both `kind`s of the fire latency). Null when the text has none.
 */
export function parseHistogram(text: string, name: string): ParsedHistogram | null {
  const byLe = new Map<number, number>();
  let sum = 0;
  let count = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const metric = m[1] as string;
    const value = Number(m[3]);
    if (metric === `${name}_bucket`) {
      const le = /le="([^"]+)"/.exec(m[2] ?? '');
      if (le === null) continue;
      const bound = le[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(le[1]);
      byLe.set(bound, (byLe.get(bound) ?? 0) + value);
      seen = true;
    } else if (metric === `${name}_sum`) {
      sum += value;
      seen = true;
    } else if (metric === `${name}_count`) {
      count += value;
      seen = true;
    }
  }
  if (!seen) return null;
  const buckets = [...byLe].map(([le, c]) => ({ le, count: c })).sort((a, b) => a.le - b.le);
  return { buckets, sum, count };
}

/**
 * Sum of a counter or gauge over all its label sets in Prometheus text exposition (0 when absent).
 * `name` is matched exactly (so `winchester_streams_active` does not pick up a longer name).
 */
export function parseMetricSum(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m !== null && m[1] === name) total += Number(m[3]);
  }
  return total;
}

/** A progress reading: `done` items completed by time `atMs`. */
export interface ProgressSample {
  atMs: number;
  done: number;
}

/**
 * Throughput per window from cumulative progress samples (ascending time): the rate in each window of
 * `windowMs`, from the last sample at or before the window's start to the last one at or before its end.
 * Windows start at the first sample.
 */
export function throughputSeries(
  samples: readonly ProgressSample[],
  windowMs: number,
): { startMs: number; perSecond: number }[] {
  if (!(windowMs > 0)) throw new RangeError(`window must be positive, got ${windowMs}`);
  if (samples.length < 2) return [];
  const first = samples[0] as ProgressSample;
  const last = samples[samples.length - 1] as ProgressSample;
  const out: { startMs: number; perSecond: number }[] = [];
  let i = 0;
  const at = (t: number): number => {
    // The cumulative count of the last sample at or before t (samples ascend; i only moves forward).
    while (i + 1 < samples.length && (samples[i + 1] as ProgressSample).atMs <= t) i++;
    return (samples[i] as ProgressSample).done;
  };
  for (let start = first.atMs; start < last.atMs; start += windowMs) {
    const end = Math.min(start + windowMs, last.atMs);
    const a = at(start);
    const b = at(end);
    out.push({ startMs: start - first.atMs, perSecond: ((b - a) / (end - start)) * 1000 });
  }
  return out;
}
