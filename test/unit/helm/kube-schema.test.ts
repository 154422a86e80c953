// The offline manifest validator used by the chart tests must itself catch what it claims to: wrong types,
// bad quantities, missing required fields, unknown fields at any depth, and kinds it has no schema for.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { validateManifest } from './kube-schema.js';

// biome-ignore lint/suspicious/noExplicitAny: a manifest tree the tests mutate by path
function deployment(): Record<string, any> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'w', labels: { app: 'w' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'w' } },
      template: {
        metadata: { labels: { app: 'w' }, annotations: { 'checksum/config': 'abc' } },
        spec: {
          securityContext: { runAsNonRoot: true, runAsUser: 10001 },
          containers: [
            {
              name: 'w',
              image: 'winchester:1',
              args: ['trigger-worker'],
              env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }],
              ports: [{ name: 'metrics', containerPort: 9464 }],
              readinessProbe: { httpGet: { path: '/readyz', port: 'metrics' }, periodSeconds: 5 },
              resources: { requests: { cpu: '500m', memory: '512Mi' } },
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }],
        },
      },
    },
  };
}

describe('validateManifest', () => {
  test('a valid Deployment, KEDA ScaledObject and ServiceMonitor have no problems', async () => {
    assert.deepEqual(await validateManifest(deployment()), []);
    assert.deepEqual(
      await validateManifest({
        apiVersion: 'keda.sh/v1alpha1',
        kind: 'ScaledObject',
        metadata: { name: 'w' },
        spec: { scaleTargetRef: { name: 'w' }, triggers: [{ type: 'kafka', metadata: { topic: 't' } }] },
      }),
      [],
    );
    assert.deepEqual(
      await validateManifest({
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'ServiceMonitor',
        metadata: { name: 'w' },
        spec: { selector: { matchLabels: { a: 'b' } }, endpoints: [{ port: 'metrics', interval: '30s' }] },
      }),
      [],
    );
  });

  test('wrong types and bad quantities are reported with their path', async () => {
    const d = deployment();
    d.spec.replicas = 'two';
    d.spec.template.spec.containers[0].resources.requests.memory = 'lots';
    const problems = await validateManifest(d);
    assert.ok(
      problems.some((p) => p.startsWith('Deployment/w /spec/replicas: type')),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.includes('/resources/requests/memory')),
      problems.join('\n'),
    );
  });

  test('a missing required field is reported', async () => {
    const d = deployment();
    delete d.spec.template.spec.containers[0].name;
    const problems = await validateManifest(d);
    assert.ok(
      problems.some((p) => /containers\/0: required .*"name"/.test(p)),
      problems.join('\n'),
    );
  });

  test('unknown fields are reported at any depth, in maps of known fields too', async () => {
    const d = deployment();
    d.spec.template.spec.containers[0].readinesProbe = d.spec.template.spec.containers[0].readinessProbe;
    d.spec.template.spec.containers[0].readinessProbe.httpGet.paht = '/x';
    d.spec.strategy = { type: 'RollingUpdate', rollingUpdat: {} };
    const s = {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: { name: 'w' },
      spec: { scaleTargetRef: { name: 'w' }, triggers: [{ type: 'kafka', metadata: {} }], minReplicas: 1 },
    };
    assert.deepEqual((await validateManifest(d)).sort(), [
      'Deployment/w /spec/strategy/rollingUpdat: not a field of apps/v1 Deployment',
      'Deployment/w /spec/template/spec/containers/0/readinesProbe: not a field of apps/v1 Deployment',
      'Deployment/w /spec/template/spec/containers/0/readinessProbe/httpGet/paht: not a field of apps/v1 Deployment',
    ]);
    assert.deepEqual(await validateManifest(s), [
      'ScaledObject/w /spec/minReplicas: not a field of keda.sh/v1alpha1 ScaledObject',
    ]);
    // Labels and annotations are free-form maps: any key is fine.
    assert.deepEqual(await validateManifest(deployment()), []);
  });

  test('a kind without a schema is a problem, not a pass', async () => {
    const problems = await validateManifest({
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'x' },
    });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^Widget\/x: no schema for example\.com\/v1 Widget/);
  });
});
