/** Property tests: algebraic laws of the arithmetic and the guarantees of pinned ranges. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { civilFromDays, dayOf, daysFromCivil } from '../../../src/timex/calendar.js';
import { contains, parseTimex, TimexEvalError, TimexSyntaxError } from '../../../src/timex/index.js';
import { type Instant, toFields, US_PER_DAY, US_PER_HOUR } from '../../../src/timex/instant.js';
import { at } from './helpers.js';

const RUNS = { numRuns: 400 };

/** Instants in 1800–2150, far enough from the supported edges for the durations below. */
const instant = fc.integer({ min: at('1800-01-01T00:00:00Z'), max: at('2150-01-01T00:00:00Z') });
const NOW = at('2000-01-01T00:00:00Z');

type Parts = Partial<Record<'d' | 'h' | 'm' | 's' | 'us', number>>;
const fixedDuration = fc.record(
  {
    d: fc.integer({ min: 0, max: 10_000 }),
    h: fc.integer({ min: 0, max: 50_000 }),
    m: fc.integer({ min: 0, max: 1_000_000 }),
    s: fc.integer({ min: 0, max: 10_000_000 }),
    us: fc.integer({ min: 0, max: 2 ** 40 }),
  },
  { requiredKeys: [] },
);
const text = (d: Parts) => {
  const parts = Object.entries(d).map(([u, v]) => `${v}${u}`);
  return parts.length === 0 ? '0s' : parts.join(' ');
};

function evalAt(source: string, vars: Record<string, Instant>) {
  return parseTimex(source).evaluate(vars, NOW);
}

describe('calendar', () => {
  test('day-number conversions agree with the platform calendar (toFields)', () => {
    fc.assert(
      fc.property(instant, (t) => {
        const f = toFields(t);
        const c = civilFromDays(dayOf(t));
        assert.deepEqual([c.year, c.month, c.day], [f.year, f.month, f.day]);
        assert.equal(daysFromCivil(f.year, f.month, f.day), dayOf(t));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('arithmetic laws', () => {
  test('t + d - d == t for durations of days and smaller (no clamping)', () => {
    fc.assert(
      fc.property(instant, fixedDuration, (t, d) => {
        const r = evalAt(`$t + ${text(d)} - ${text(d)}`, { t });
        assert.equal(r.kind === 'timestamp' && r.at, t);
      }),
      RUNS,
    );
  });
  test('t + d is exactly t plus the duration in microseconds', () => {
    fc.assert(
      fc.property(instant, fixedDuration, (t, d) => {
        const us =
          (d.d ?? 0) * US_PER_DAY +
          (d.h ?? 0) * US_PER_HOUR +
          (d.m ?? 0) * 60e6 +
          (d.s ?? 0) * 1e6 +
          (d.us ?? 0);
        const r = evalAt(`$t + ${text(d)}`, { t });
        assert.equal(r.kind === 'timestamp' && r.at, t + us);
      }),
      RUNS,
    );
  });
  test('t + N mo - N mo == t when the day of month is at most 28', () => {
    fc.assert(
      fc.property(instant, fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 20 }), (t, mo, y) => {
        fc.pre(toFields(t).day <= 28);
        const r = evalAt(`$t + ${y}y ${mo}mo - ${mo}mo ${y}y`, { t });
        assert.equal(r.kind === 'timestamp' && r.at, t);
      }),
      RUNS,
    );
  });
  test('adding months never changes the time of day and lands on a real day', () => {
    fc.assert(
      fc.property(instant, fc.integer({ min: 0, max: 500 }), (t, mo) => {
        const r = evalAt(`$t + ${mo}mo`, { t });
        assert.ok(r.kind === 'timestamp');
        const a = toFields(t);
        const b = toFields(r.at);
        assert.deepEqual(
          [b.hour, b.minute, b.second, b.microsecond],
          [a.hour, a.minute, a.second, a.microsecond],
        );
        assert.equal((b.year * 12 + b.month - (a.year * 12 + a.month) + 1200) % 1200, mo % 1200);
        assert.ok(b.day <= a.day);
      }),
      RUNS,
    );
  });
});

/** For each range function, durations whose units are all smaller than the range's. */
const smaller = {
  hour: { units: ['m', 's', 'us'], replace: { m: 59, s: 59, us: 999_999 } },
  day: { units: ['h', 'm', 's', 'us'], replace: { h: 23, m: 59, s: 59, us: 999_999 } },
  month: { units: ['d', 'h', 'm', 's', 'us'], replace: { d: 31, h: 23, m: 59, s: 59, us: 999_999 } },
  year: {
    units: ['mo', 'd', 'h', 'm', 's', 'us'],
    replace: { mo: 12, d: 31, h: 23, m: 59, s: 59, us: 999_999 },
  },
} as const;
const UNIT_US: Record<string, number> = { d: US_PER_DAY, h: US_PER_HOUR, m: 60e6, s: 1e6, us: 1 };
const MIN_VALUE: Record<string, number> = { mo: 1, d: 1 };

describe('pinned ranges', () => {
  for (const [fn, spec] of Object.entries(smaller)) {
    test(`${fn}: + - @ of a smaller duration still contains the timestamp`, () => {
      const dur = fc
        .subarray([...spec.units], { minLength: 1 })
        .chain((units) =>
          fc.tuple(
            ...units.map((u) =>
              fc.tuple(
                fc.constant(u),
                fc.integer({ min: MIN_VALUE[u] ?? 0, max: (spec.replace as Record<string, number>)[u]! }),
              ),
            ),
          ),
        );
      fc.assert(
        fc.property(instant, fc.constantFrom('+', '-', '@'), dur, fc.boolean(), (t, op, parts, bare) => {
          const d = parts.map(([u, v]) => `${v}${u}`).join(' ');
          const source = bare ? `${fn} ${op} ${d}` : `${fn}($x) ${op} ${d}`;
          const r = evalAt(source, bare ? { timestamp: t } : { x: t });
          assert.ok(r.kind === 'range');
          assert.ok(contains(r, t), `${source} at ${t}: [${r.begin}, ${r.end})`);
          assert.ok(r.begin < r.end);
        }),
        RUNS,
      );
    });
  }
  test('hour and day keep their exact length through + and - of any smaller-unit duration', () => {
    fc.assert(
      fc.property(
        instant,
        fc.constantFrom('+', '-'),
        fc.boolean(),
        fc.integer({ min: 0, max: 100_000 }),
        (t, op, isDay, n) => {
          const unit = isDay ? 'h' : 'm';
          const r = evalAt(`${isDay ? 'day' : 'hour'} ${op} ${n}${unit}`, { timestamp: t });
          assert.ok(r.kind === 'range');
          assert.equal(r.end - r.begin, isDay ? US_PER_DAY : US_PER_HOUR);
          assert.ok(contains(r, t));
          // The boundary moved by exactly n units modulo the range length.
          const period = isDay ? US_PER_DAY : US_PER_HOUR;
          const offset = ((r.begin % period) + period) % period;
          const shift = ((((op === '+' ? 1 : -1) * n * UNIT_US[unit]!) % period) + period) % period;
          assert.equal(offset, shift);
        },
      ),
      RUNS,
    );
  });
  test('every range function gives begin < end, contains its argument, and aligns to its unit', () => {
    fc.assert(
      fc.property(instant, fc.constantFrom('hour', 'day', 'month', 'year'), (t, fn) => {
        const r = evalAt(`${fn}($x)`, { x: t });
        assert.ok(r.kind === 'range' && r.begin < r.end && contains(r, t));
        const b = toFields(r.begin);
        assert.deepEqual([b.minute, b.second, b.microsecond], [0, 0, 0]);
        if (fn !== 'hour') assert.equal(b.hour, 0);
        if (fn === 'month' || fn === 'year') assert.equal(b.day, 1);
        if (fn === 'year') assert.equal(b.month, 1);
      }),
      RUNS,
    );
  });
});

describe('determinism and robustness', () => {
  const token = fc.constantFrom(
    '$a',
    '$b',
    '$timestamp',
    'to',
    'day',
    'hour',
    'month',
    'year',
    '(',
    ')',
    '+',
    '-',
    '@',
    '1',
    '6',
    '30',
    'h',
    'm',
    'd',
    'mo',
    'y',
    's',
    'us',
    ' ',
    '12h',
    '2d',
    'x',
    '#',
  );
  const source = fc.array(token, { maxLength: 12 }).map((ts) => ts.join(' '));

  test('parsing any text either succeeds or throws a TimexSyntaxError with a position inside it', () => {
    fc.assert(
      fc.property(fc.oneof(source, fc.string({ maxLength: 20 })), (s) => {
        try {
          parseTimex(s);
        } catch (err) {
          assert.ok(err instanceof TimexSyntaxError, String(err));
          assert.ok(err.position >= 0 && err.position <= s.length);
        }
      }),
      { numRuns: 2000 },
    );
  });
  test('evaluation is deterministic and fails only with TimexEvalError', () => {
    fc.assert(
      fc.property(source, instant, instant, instant, (s, a, b, ts) => {
        let e: ReturnType<typeof parseTimex>;
        try {
          e = parseTimex(s);
        } catch {
          return;
        }
        const vars = { a, b, timestamp: ts };
        const run = () => {
          try {
            return e.evaluate(vars, NOW);
          } catch (err) {
            assert.ok(err instanceof TimexEvalError, String(err));
            return err.message;
          }
        };
        assert.deepEqual(run(), run());
        assert.deepEqual(
          run(),
          (() => {
            try {
              return parseTimex(s).evaluate(vars, NOW);
            } catch (err) {
              return (err as Error).message;
            }
          })(),
        );
      }),
      { numRuns: 2000 },
    );
  });
});
