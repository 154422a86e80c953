import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  histogramQuantile,
  parseHistogram,
  parseMetricSum,
  percentile,
  summarize,
  throughputSeries,
} from '../../../bench/lib/stats.js';

describe('percentile (nearest rank)', () => {
  test('picks an observation, never an interpolation', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(v, 50), 50);
    assert.equal(percentile(v, 99), 99);
    assert.equal(percentile(v, 100), 100);
    assert.equal(percentile(v, 0), 1);
    assert.equal(percentile([1, 10], 50), 1);
    assert.equal(percentile([1, 10], 51), 10);
  });
  test('empty sample is NaN; p outside 0..100 throws', () => {
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.throws(() => percentile([1], 101), RangeError);
    assert.throws(() => percentile([1], -1), RangeError);
    assert.throws(() => percentile([1], Number.NaN), RangeError);
  });
  test('property: at least p% of the sample is at or below it, and it is a member', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 0, max: 100 }),
        (raw, p) => {
          const sorted = [...raw].sort((a, b) => a - b);
          const x = percentile(sorted, p);
          assert.ok(sorted.includes(x));
          const atOrBelow = sorted.filter((v) => v <= x).length;
          assert.ok(atOrBelow / sorted.length >= p / 100 - 1e-12);
        },
      ),
    );
  });
});

describe('summarize', () => {
  test('count, min, mean, percentiles and max; input not modified', () => {
    const input = [3, 1, 2, 4];
    const s = summarize(input);
    assert.deepEqual(input, [3, 1, 2, 4]);
    assert.deepEqual(s, { count: 4, min: 1, mean: 2.5, p50: 2, p90: 4, p99: 4, max: 4 });
  });
  test('empty sample: count 0, the rest NaN', () => {
    const s = summarize([]);
    assert.equal(s.count, 0);
    for (const k of ['min', 'mean', 'p50', 'p90', 'p99', 'max'] as const) assert.ok(Number.isNaN(s[k]));
  });
});

describe('histogramQuantile', () => {
  const buckets = [
    { le: 0.1, count: 10 },
    { le: 0.5, count: 60 },
    { le: 1, count: 100 },
    { le: Number.POSITIVE_INFINITY, count: 100 },
  ];
  test('interpolates inside the bucket as histogram_quantile does', () => {
    assert.equal(histogramQuantile(0.1, buckets), 0.1);
    assert.ok(Math.abs(histogramQuantile(0.5, buckets) - 0.42) < 1e-12);
    assert.ok(Math.abs(histogramQuantile(0.99, buckets) - 0.9875) < 1e-12);
    assert.ok(Math.abs(histogramQuantile(0.05, buckets) - 0.05) < 1e-12);
  });
  test('a quantile in the +Inf bucket is the highest finite bound; empty is NaN', () => {
    assert.equal(
      histogramQuantile(0.99, [
        { le: 1, count: 1 },
        { le: Number.POSITIVE_INFINITY, count: 10 },
      ]),
      1,
    );
    assert.ok(Number.isNaN(histogramQuantile(0.5, [])));
    assert.ok(Number.isNaN(histogramQuantile(0.5, [{ le: 1, count: 0 }])));
    assert.throws(() => histogramQuantile(1.5, buckets), RangeError);
  });
  test('buckets in any order', () => {
    assert.equal(histogramQuantile(0.5, [...buckets].reverse()), histogramQuantile(0.5, buckets));
  });
});

const EXPOSITION = `# HELP winchester_fire_latency_seconds x
# TYPE winchester_fire_latency_seconds histogram
winchester_fire_latency_seconds_bucket{le="0.5",kind="fire"} 3
winchester_fire_latency_seconds_bucket{le="1",kind="fire"} 5
winchester_fire_latency_seconds_bucket{le="+Inf",kind="fire"} 6
winchester_fire_latency_seconds_sum{kind="fire"} 4.5
winchester_fire_latency_seconds_count{kind="fire"} 6
winchester_fire_latency_seconds_bucket{le="0.5",kind="expire"} 1
winchester_fire_latency_seconds_bucket{le="1",kind="expire"} 1
winchester_fire_latency_seconds_bucket{le="+Inf",kind="expire"} 2
winchester_fire_latency_seconds_sum{kind="expire"} 3
winchester_fire_latency_seconds_count{kind="expire"} 2
winchester_streams_active{trigger="a"} 7
winchester_streams_active{trigger="b"} 3
winchester_streams_active_total 1000
winchester_checkpoints_total 12
`;

describe('Prometheus exposition', () => {
  test('parseHistogram adds the label sets together', () => {
    const h = parseHistogram(EXPOSITION, 'winchester_fire_latency_seconds');
    assert.deepEqual(h, {
      buckets: [
        { le: 0.5, count: 4 },
        { le: 1, count: 6 },
        { le: Number.POSITIVE_INFINITY, count: 8 },
      ],
      sum: 7.5,
      count: 8,
    });
  });
  test('parseHistogram is null for a histogram that is not there', () => {
    assert.equal(parseHistogram(EXPOSITION, 'winchester_checkpoint_duration_seconds'), null);
  });
  test('parseMetricSum matches the name exactly, over label sets', () => {
    assert.equal(parseMetricSum(EXPOSITION, 'winchester_streams_active'), 10);
    assert.equal(parseMetricSum(EXPOSITION, 'winchester_checkpoints_total'), 12);
    assert.equal(parseMetricSum(EXPOSITION, 'winchester_missing'), 0);
  });
});

describe('throughputSeries', () => {
  test('rate per window from cumulative samples', () => {
    const s = throughputSeries(
      [
        { atMs: 1000, done: 0 },
        { atMs: 2000, done: 100 },
        { atMs: 3000, done: 300 },
        { atMs: 4000, done: 300 },
      ],
      1000,
    );
    assert.deepEqual(s, [
      { startMs: 0, perSecond: 100 },
      { startMs: 1000, perSecond: 200 },
      { startMs: 2000, perSecond: 0 },
    ]);
  });
  test('a window without a sample inside takes the last one before it', () => {
    const s = throughputSeries(
      [
        { atMs: 0, done: 0 },
        { atMs: 3000, done: 300 },
      ],
      1000,
    );
    assert.deepEqual(
      s.map((x) => x.perSecond),
      [0, 0, 300],
    );
  });
  test('fewer than two samples: nothing; a bad window throws', () => {
    assert.deepEqual(throughputSeries([{ atMs: 0, done: 1 }], 1000), []);
    assert.throws(() => throughputSeries([], 0), RangeError);
  });
  test('property: the windows add up to the total', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 0, max: 1000 })), {
          minLength: 1,
          maxLength: 50,
        }),
        fc.integer({ min: 1, max: 3000 }),
        (steps, windowMs) => {
          let t = 0;
          let done = 0;
          const samples = [{ atMs: 0, done: 0 }];
          for (const [dt, dn] of steps) {
            t += dt;
            done += dn;
            samples.push({ atMs: t, done });
          }
          const series = throughputSeries(samples, windowMs);
          let total = 0;
          for (const w of series) total += (w.perSecond * Math.min(windowMs, t - w.startMs)) / 1000;
          assert.ok(Math.abs(total - done) < 1e-6 * Math.max(1, done));
        },
      ),
    );
  });
});
