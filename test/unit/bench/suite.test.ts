import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BenchError } from '../../../bench/lib/harness.js';
import { parseSections, SECTIONS, sectionArgs, summaryRows } from '../../../bench/suite.js';

describe('parseSections', () => {
  test('--all is every section in suite order; --only keeps suite order', () => {
    assert.deepEqual(parseSections(['--all']), [...SECTIONS]);
    assert.deepEqual(parseSections(['--only', 'failover,latency']), ['latency', 'failover']);
    assert.deepEqual(parseSections(['--only', ' heap ']), ['heap']);
  });
  test('an unknown name, an empty list, or neither flag: a BenchError naming the choices', () => {
    assert.throws(
      () => parseSections(['--only', 'heap,speed']),
      (e: unknown) => e instanceof BenchError && /unknown benchmark "speed".*engine, e2e/.test(e.message),
    );
    assert.throws(() => parseSections(['--only']), BenchError);
    assert.throws(() => parseSections([]), /--all/);
  });
});

describe('sectionArgs', () => {
  test('drops the suite flags, passes the rest', () => {
    assert.deepEqual(sectionArgs('heap', ['--only', 'heap', '--partitions', '8']), ['--partitions', '8']);
  });
  test('e2e: 1M notifications by default, 20k and no profile with --quick, an explicit size wins', () => {
    assert.deepEqual(sectionArgs('e2e', ['--all']), ['--notifications', '1000000']);
    assert.deepEqual(sectionArgs('e2e', ['--all', '--quick']), ['--notifications', '20000', '--no-profile']);
    assert.deepEqual(sectionArgs('e2e', ['--all', '--notifications', '5000']), ['--notifications', '5000']);
  });
  test('engine takes only its own options', () => {
    assert.deepEqual(sectionArgs('engine', ['--all', '--partitions', '8']), []);
    assert.deepEqual(sectionArgs('engine', ['--all', '--quick']), [
      '--instances',
      '300',
      '--runs',
      '1',
      '--streams',
      '20000',
    ]);
  });
});

describe('summaryRows', () => {
  test('each section beside its baseline and target', () => {
    const rows = summaryRows({
      engine: {
        engine: [{ perSecondCpu: 1_000_000 }, {}, { perSecondCpu: 500_000 }],
        distiller: [{ perSecondCpu: 40_000 }, { perSecondCpu: 20_000 }],
      },
      e2e: { endToEnd: { perSecond: 2_000 }, raw: { perSecond: 25_000 }, ratio: 0.08 },
      latency: {
        latency: {
          achievedRate: 100,
          load: 0.5,
          maxRate: { perSecond: 200 },
          endToEnd: { p50: 0.5, p99: 1.5 },
          workerHistogram: { p50: 0.4, p99: 1.2 },
        },
      },
      heap: {
        heap: { baseline: { heapUsed: 2 ** 24 }, points: [{ streams: 100_000, bytesPerStream: 450 }] },
      },
      failover: {
        failover: {
          cases: [{ name: 'SIGKILL', victimStreams: 10, detected: 10, rejoined: 10.5, recovered: 12 }],
        },
      },
    });
    assert.deepEqual(
      rows.map((r) => r[4]),
      ['meets ≥ 250,000', '', 'below ≥ 20,000 / ≥ 50%', 'over p99 ≤ 1 s', 'meets ≤ 500 B', 'over 5 s'],
    );
    assert.equal(rows[0]?.[3], '0.50×');
    assert.equal(rows[2]?.[3], '8%');
    assert.equal(rows[3]?.[1], '500 ms / 1500 ms');
    assert.equal(rows[5]?.[2], 'detect 10.00 s, rebalance 0.50 s, restore 1.50 s');
  });
  test('no results, no rows', () => {
    assert.deepEqual(summaryRows({}), []);
  });
});
