// The chart's shipped files: the default configuration is the repository's etc/ (Helm cannot read outside
// the chart, so they are copies that must not drift), and the Grafana dashboard only queries metrics,
// and labels, that the workers define.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { createMetrics } from '../../../src/metrics/metrics.js';

const root = new URL('../../../', import.meta.url).pathname;
const files = join(root, 'helm/winchester/files');

/** Paths of the settings in a values tree: leaves, lists and empty maps; non-empty maps are walked. */
function settingPaths(value: unknown, path: string[] = []): string[] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
    return Object.entries(value).flatMap(([k, v]) => settingPaths(v, [...path, k]));
  }
  return [path.join('.')];
}

function hasPath(tree: unknown, path: string): boolean {
  let node = tree;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object' || !(part in node)) return false;
    node = (node as Record<string, unknown>)[part];
  }
  return true;
}

describe('helm chart files', () => {
  test('ci/all-options-values.yaml sets every setting of values.yaml', () => {
    const chart = join(root, 'helm/winchester');
    const defaults = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as unknown;
    const all = parse(readFileSync(join(chart, 'ci/all-options-values.yaml'), 'utf8')) as unknown;
    const paths = settingPaths(defaults);
    assert.ok(paths.length > 100, `only ${paths.length} settings found`);
    const missing = paths.filter((p) => !hasPath(all, p));
    assert.deepEqual(missing, [], 'settings of values.yaml that ci/all-options-values.yaml leaves out');
  });

  for (const name of ['winchester.yaml', 'event_definitions.yaml', 'triggers.yaml', 'pipelines.yaml']) {
    test(`files/${name} is byte-identical to etc/${name} (copy it again after editing etc/)`, () => {
      // latin1: one character per byte, so equal strings are equal bytes.
      const shipped = readFileSync(join(files, name), 'latin1');
      const source = readFileSync(join(root, 'etc', name), 'latin1');
      assert.ok(
        shipped === source,
        `helm/winchester/files/${name} differs from etc/${name}: cp etc/${name} helm/winchester/files/`,
      );
    });
  }

  describe('Grafana dashboard', () => {
    const dashboard = JSON.parse(readFileSync(join(files, 'dashboard.json'), 'utf8')) as {
      uid: string;
      panels: { id: number; title: string; type: string; targets?: { expr: string }[] }[];
      templating: { list: { name: string }[] };
    };
    const queries = dashboard.panels.flatMap((p) =>
      (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
    );

    test('has panels for throughput, lag, streams by state, fire latency and errors', () => {
      const titles = dashboard.panels.map((p) => p.title.toLowerCase());
      for (const want of ['notifications', 'lag', 'streams by state', 'fire latency', 'errors']) {
        assert.ok(
          titles.some((t) => t.includes(want)),
          `no panel titled with '${want}' in ${titles.join(', ')}`,
        );
      }
      const ids = dashboard.panels.map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
      assert.ok(queries.length >= 20);
    });

    test('every winchester_* metric queried is defined by createMetrics, with the labels grouped by', () => {
      const { registry } = createMetrics();
      const defined = new Map<string, string[]>();
      for (const m of registry.getMetricsAsArray()) {
        defined.set(m.name, (m as unknown as { labelNames: string[] }).labelNames ?? []);
      }
      const used = new Set<string>();
      for (const { panel, expr } of queries) {
        for (const [raw] of expr.matchAll(/\bwinchester_[a-z_]+/g)) {
          // Histograms are queried through their _bucket series.
          const name = raw.replace(/_bucket$/, '');
          used.add(name);
          const labels = defined.get(name);
          assert.ok(
            labels !== undefined,
            `panel '${panel}' queries ${raw}, which createMetrics does not define`,
          );
          for (const [, list = ''] of expr.matchAll(/\bby \(([^)]*)\)/g)) {
            for (const label of list.split(',').map((l) => l.trim())) {
              if (label === 'le' || label === '') continue;
              assert.ok(
                labels.includes(label),
                `panel '${panel}' groups ${name} by '${label}', not one of its labels (${labels.join(', ')})`,
              );
            }
          }
        }
      }
      // The headline metrics are all on the dashboard.
      for (const name of [
        'winchester_notifications_received_total',
        'winchester_consumer_lag',
        'winchester_streams_active',
        'winchester_streams_fired_total',
        'winchester_streams_expired_total',
        'winchester_fire_latency_seconds',
        'winchester_pipeline_batches_total',
        'winchester_database_errors_total',
        'winchester_kafka_errors_total',
      ]) {
        assert.ok(used.has(name), `${name} is not on the dashboard`);
      }
    });

    test('queries go through the datasource and namespace variables', () => {
      assert.deepEqual(
        dashboard.templating.list.map((v) => v.name),
        ['datasource', 'namespace'],
      );
      for (const { panel, expr } of queries) {
        assert.match(expr, /namespace=~"\$namespace"/, `panel '${panel}' ignores the namespace variable`);
      }
    });
  });
});
