// The Helm chart, with a real helm (built from source by scripts/helm.sh): lint, render with the default
// values and with ci/all-options-values.yaml, validate every rendered manifest against the Kubernetes
// OpenAPI schemas (kube-schema.ts), `helm install --dry-run=client`, and bad values rejected by
// values.schema.json or the chart's own checks with a message that says what is wrong.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { validateManifest } from './kube-schema.js';

const root = new URL('../../../', import.meta.url).pathname;
const chart = join(root, 'helm/winchester');
const allOptions = join(chart, 'ci/all-options-values.yaml');

// Rendered manifests are deep untyped trees; the assertions navigate them by path and check every value.
// biome-ignore lint/suspicious/noExplicitAny: see above
type Manifest = Record<string, any>;

let helmBin = '';
let home = '';

/** Builds (or finds in .cache/helm) the helm CLI; a failed build fails every test with its output. */
function buildHelm(): string {
  const r = spawnSync('bash', [join(root, 'scripts/helm.sh')], { encoding: 'utf8', timeout: 30 * 60_000 });
  if (r.status !== 0) {
    throw new Error(`scripts/helm.sh could not provide helm (exit ${r.status}):\n${r.stderr}`);
  }
  return r.stdout.trim();
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function helm(args: string[]): Run {
  const r = spawnSync(helmBin, args, {
    encoding: 'utf8',
    timeout: 120_000,
    // helm keeps its caches and repositories under these; a test leaves nothing in the user's home.
    env: {
      PATH: process.env.PATH,
      HOME: home,
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_DATA_HOME: join(home, 'data'),
      KUBECONFIG: join(home, 'no-kubeconfig'),
    },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(args: string[]): string {
  const r = helm(args);
  assert.equal(r.status, 0, `helm ${args.join(' ')} failed:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

function render(...extra: string[]): Manifest[] {
  const out = ok(['template', 'rel', chart, '--namespace', 'ops', ...extra]);
  return parseAllDocuments(out)
    .map((d) => {
      assert.equal(d.errors.length, 0, `rendered YAML does not parse: ${d.errors.join('; ')}`);
      return d.toJS() as Manifest | null;
    })
    .filter((d): d is Manifest => d !== null);
}

function find(docs: Manifest[], kind: string, name: string): Manifest {
  const d = docs.find((x) => x.kind === kind && x.metadata?.name === name);
  assert.ok(d, `no ${kind}/${name} among ${docs.map((x) => `${x.kind}/${x.metadata?.name}`).join(', ')}`);
  return d;
}

async function assertValid(docs: Manifest[]): Promise<void> {
  const problems = (await Promise.all(docs.map((d) => validateManifest(d)))).flat();
  assert.deepEqual(problems, [], `manifests do not validate:\n${problems.join('\n')}`);
}

function envOf(container: Manifest): Map<string, Manifest> {
  return new Map((container.env as Manifest[]).map((e) => [e.name as string, e]));
}

function writeValues(name: string, text: string): string {
  const p = join(home, name);
  writeFileSync(p, text);
  return p;
}

before(() => {
  home = mkdtempSync(join(tmpdir(), 'winchester-helm-'));
  helmBin = buildHelm();
});

after(() => {
  if (home !== '') rmSync(home, { recursive: true, force: true });
});

describe('helm chart', () => {
  test('helm lint --strict passes with the default values and with every option set', () => {
    const out = ok(['lint', '--strict', chart]);
    assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    ok(['lint', '--strict', chart, '-f', allOptions]);
  });

  describe('default values', () => {
    let docs: Manifest[] = [];
    before(() => {
      docs = render();
    });

    test('render the workers, the metrics Service, the configuration and the migration hook', () => {
      const kinds = docs.map((d) => `${d.kind}/${d.metadata.name}`).sort();
      assert.deepEqual(kinds, [
        'ConfigMap/rel-winchester',
        'ConfigMap/rel-winchester-migrate',
        'Deployment/rel-winchester-pipeline-worker',
        'Deployment/rel-winchester-trigger-worker',
        'Job/rel-winchester-migrate',
        'Secret/rel-winchester',
        'Secret/rel-winchester-migrate',
        'Service/rel-winchester-metrics',
        'ServiceAccount/rel-winchester',
      ]);
      for (const d of docs) {
        assert.equal(d.metadata.namespace, 'ops', `${d.kind}/${d.metadata.name} namespace`);
        const labels = d.metadata.labels;
        assert.equal(labels['app.kubernetes.io/name'], 'winchester');
        assert.equal(labels['app.kubernetes.io/instance'], 'rel');
        assert.equal(labels['app.kubernetes.io/managed-by'], 'Helm');
        assert.equal(labels['app.kubernetes.io/version'], '0.1.0');
        assert.match(labels['helm.sh/chart'], /^winchester-\d+\.\d+\.\d+$/);
      }
    });

    test('every manifest validates against the Kubernetes schemas', async () => {
      await assertValid(docs);
    });

    test('workers: args, probes on the metrics port, grace period, non-root read-only with /tmp', () => {
      for (const [component, command] of [
        ['trigger-worker', ['trigger-worker', '-c', '/etc/winchester/winchester.yaml', '--stage', 'all']],
        ['pipeline-worker', ['pipeline-worker', '-c', '/etc/winchester/winchester.yaml']],
      ] as const) {
        const d = find(docs, 'Deployment', `rel-winchester-${component}`);
        assert.equal(d.spec.replicas, 2);
        assert.deepEqual(d.spec.selector.matchLabels, {
          'app.kubernetes.io/name': 'winchester',
          'app.kubernetes.io/instance': 'rel',
          'app.kubernetes.io/component': component,
        });
        const pod = d.spec.template.spec;
        assert.equal(pod.terminationGracePeriodSeconds, 60);
        assert.equal(pod.securityContext.runAsNonRoot, true);
        assert.equal(pod.securityContext.runAsUser, 10001);
        assert.equal(pod.automountServiceAccountToken, false);
        assert.equal(pod.serviceAccountName, 'rel-winchester');
        const [c] = pod.containers;
        assert.equal(c.image, 'winchester:0.1.0');
        assert.deepEqual(c.args, command);
        assert.deepEqual(c.ports, [{ name: 'metrics', containerPort: 9464, protocol: 'TCP' }]);
        assert.equal(c.livenessProbe.httpGet.path, '/healthz');
        assert.equal(c.livenessProbe.httpGet.port, 'metrics');
        assert.equal(c.readinessProbe.httpGet.path, '/readyz');
        assert.equal(c.readinessProbe.httpGet.port, 'metrics');
        assert.equal(c.securityContext.readOnlyRootFilesystem, true);
        assert.equal(c.securityContext.allowPrivilegeEscalation, false);
        assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
        assert.deepEqual(
          c.volumeMounts.map((m: Manifest) => m.mountPath),
          ['/etc/winchester', '/tmp'],
        );
        assert.deepEqual(
          pod.volumes.find((v: Manifest) => v.name === 'tmp'),
          { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
        );
        assert.equal(pod.volumes.find((v: Manifest) => v.name === 'config').configMap.name, 'rel-winchester');
        const env = envOf(c);
        assert.equal(env.get('WINCHESTER_CONFIG')?.value, '/etc/winchester/winchester.yaml');
        assert.deepEqual(env.get('WINCHESTER_DATABASE_URL')?.valueFrom, {
          secretKeyRef: { name: 'rel-winchester', key: 'database-url' },
        });
        assert.equal(env.get('WINCHESTER_KAFKA_BROKERS')?.value, 'kafka:9092');
        assert.equal(env.get('WINCHESTER_METRICS_PORT')?.value, '9464');
        assert.equal(env.has('WINCHESTER_KAFKA_SASL_PASSWORD'), false, 'no SASL without a mechanism');
        assert.equal(
          env.has('WINCHESTER_SCHEMA_REGISTRY_URL'),
          false,
          'no registry: JSON, as winchester.yaml says',
        );
        assert.equal(env.has('WINCHESTER_SCHEMA_REGISTRY_PASSWORD'), false);
        assert.match(d.spec.template.metadata.annotations['checksum/config'], /^[a-f0-9]{64}$/);
      }
    });

    test('the ConfigMap carries the StackTach configuration of etc/ unchanged', () => {
      const cm = find(docs, 'ConfigMap', 'rel-winchester');
      for (const name of ['winchester.yaml', 'event_definitions.yaml', 'triggers.yaml', 'pipelines.yaml']) {
        const etc = readFileSync(join(root, 'etc', name), 'utf8');
        assert.equal(`${cm.data[name]}\n`, etc.replace(/\n*$/, '\n'), `${name} in the ConfigMap`);
      }
      assert.deepEqual(find(docs, 'ConfigMap', 'rel-winchester-migrate').data, cm.data);
    });

    test('the migration Job runs `winchester db upgrade` before install and upgrade, after its config', () => {
      const job = find(docs, 'Job', 'rel-winchester-migrate');
      assert.equal(job.metadata.annotations['helm.sh/hook'], 'pre-install,pre-upgrade');
      const jobWeight = Number(job.metadata.annotations['helm.sh/hook-weight']);
      for (const kind of ['ConfigMap', 'Secret']) {
        const dep = find(docs, kind, 'rel-winchester-migrate');
        assert.equal(dep.metadata.annotations['helm.sh/hook'], 'pre-install,pre-upgrade');
        assert.ok(
          Number(dep.metadata.annotations['helm.sh/hook-weight']) < jobWeight,
          `${kind} before the Job`,
        );
      }
      const pod = job.spec.template.spec;
      assert.equal(pod.restartPolicy, 'Never');
      assert.equal(
        pod.serviceAccountName,
        undefined,
        'the chart ServiceAccount does not exist yet at pre-install',
      );
      const [c] = pod.containers;
      assert.deepEqual(c.args, ['db', 'upgrade', '-c', '/etc/winchester/winchester.yaml']);
      assert.equal(
        envOf(c).get('WINCHESTER_DATABASE_URL')?.valueFrom.secretKeyRef.name,
        'rel-winchester-migrate',
      );
      assert.equal(
        pod.volumes.find((v: Manifest) => v.name === 'config').configMap.name,
        'rel-winchester-migrate',
      );
      assert.equal(c.securityContext.readOnlyRootFilesystem, true);
      assert.equal(
        find(docs, 'Secret', 'rel-winchester-migrate').stringData['database-url'],
        find(docs, 'Secret', 'rel-winchester').stringData['database-url'],
      );
    });

    test('the metrics Service selects both worker kinds on the metrics port', () => {
      const svc = find(docs, 'Service', 'rel-winchester-metrics');
      assert.deepEqual(svc.spec.selector, {
        'app.kubernetes.io/name': 'winchester',
        'app.kubernetes.io/instance': 'rel',
      });
      assert.deepEqual(svc.spec.ports, [
        { name: 'metrics', port: 9464, targetPort: 'metrics', protocol: 'TCP' },
      ]);
    });
  });

  describe('every option (ci/all-options-values.yaml)', () => {
    let docs: Manifest[] = [];
    before(() => {
      docs = render('-f', allOptions);
    });

    test('renders the optional resources', () => {
      const kinds = docs.map((d) => `${d.kind}/${d.metadata.name}`).sort();
      assert.deepEqual(kinds, [
        'ConfigMap/winchester-all',
        'ConfigMap/winchester-all-dashboard',
        'ConfigMap/winchester-all-migrate',
        'Deployment/winchester-all-pipeline-worker',
        'Deployment/winchester-all-trigger-worker',
        'HorizontalPodAutoscaler/winchester-all-pipeline-worker',
        'Job/winchester-all-migrate',
        'NetworkPolicy/winchester-all',
        'PodDisruptionBudget/winchester-all-pipeline-worker',
        'PodDisruptionBudget/winchester-all-trigger-worker',
        'ScaledObject/winchester-all-trigger-worker',
        'Secret/winchester-all',
        'Secret/winchester-all-migrate',
        'Service/winchester-all-metrics',
        'ServiceAccount/winchester-workers',
        'ServiceMonitor/winchester-all',
      ]);
    });

    test('every manifest validates against the Kubernetes schemas (KEDA and prometheus-operator included)', async () => {
      await assertValid(docs);
    });

    test('autoscaled Deployments leave replicas to the autoscaler', () => {
      assert.equal(find(docs, 'Deployment', 'winchester-all-trigger-worker').spec.replicas, undefined);
      assert.equal(find(docs, 'Deployment', 'winchester-all-pipeline-worker').spec.replicas, undefined);
      const hpa = find(docs, 'HorizontalPodAutoscaler', 'winchester-all-pipeline-worker');
      assert.deepEqual(hpa.spec.scaleTargetRef, {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: 'winchester-all-pipeline-worker',
      });
      assert.deepEqual(
        hpa.spec.metrics.map((m: Manifest) => [m.resource.name, m.resource.target.averageUtilization]),
        [
          ['cpu', 75],
          ['memory', 80],
        ],
      );
      const so = find(docs, 'ScaledObject', 'winchester-all-trigger-worker');
      assert.equal(so.spec.scaleTargetRef.name, 'winchester-all-trigger-worker');
      const [trigger] = so.spec.triggers;
      assert.equal(trigger.type, 'kafka');
      assert.deepEqual(trigger.metadata, {
        bootstrapServers: 'kafka-0.kafka.svc:9093,kafka-1.kafka.svc:9093',
        consumerGroup: 'winchester-prod.streams',
        topic: 'winchester.stream-events',
        lagThreshold: '5000',
        activationLagThreshold: '10',
        allowIdleConsumers: 'false',
        offsetResetPolicy: 'earliest',
      });
      assert.deepEqual(trigger.authenticationRef, { name: 'kafka-sasl' });
    });

    test('image by digest, SASL and TLS from Secrets, extra env, custom port and probes', () => {
      const d = find(docs, 'Deployment', 'winchester-all-trigger-worker');
      const pod = d.spec.template.spec;
      const [c] = pod.containers;
      assert.equal(
        c.image,
        'registry.example.com/ops/winchester@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      );
      assert.deepEqual(c.args, [
        'trigger-worker',
        '-c',
        '/etc/winchester/winchester.yaml',
        '--stage',
        'streams',
        '--migrate',
      ]);
      const env = envOf(c);
      assert.equal(env.get('WINCHESTER_KAFKA_SASL_MECHANISM')?.value, 'scram-sha-512');
      assert.deepEqual(env.get('WINCHESTER_KAFKA_SASL_PASSWORD')?.valueFrom, {
        secretKeyRef: { name: 'winchester-all', key: 'sasl-password' },
      });
      assert.equal(env.get('WINCHESTER_KAFKA_SSL_CA_FILE')?.value, '/etc/winchester-kafka-tls/ca.crt');
      assert.equal(
        env.get('WINCHESTER_SCHEMA_REGISTRY_URL')?.value,
        'http://apicurio.registry:8080/apis/ccompat/v7',
      );
      assert.deepEqual(env.get('WINCHESTER_SCHEMA_REGISTRY_PASSWORD')?.valueFrom, {
        secretKeyRef: { name: 'winchester-all', key: 'registry-password' },
      });
      assert.equal(env.get('WINCHESTER_KAFKA_CLIENT_ID')?.value, 'winchester-prod');
      assert.equal(env.get('WINCHESTER_LOG_LEVEL')?.value, 'debug');
      assert.equal(env.get('WINCHESTER_TRIGGER_WORKER_CHECKPOINT_RECORDS')?.value, '2000');
      assert.equal(env.get('POD_NAME')?.valueFrom.fieldRef.fieldPath, 'metadata.name');
      assert.deepEqual(c.ports[0], { name: 'metrics', containerPort: 9500, protocol: 'TCP' });
      assert.equal(c.livenessProbe.periodSeconds, 15);
      assert.equal(pod.terminationGracePeriodSeconds, 90);
      assert.equal(pod.priorityClassName, 'high-priority');
      assert.equal(pod.serviceAccountName, 'winchester-workers');
      assert.deepEqual(
        pod.volumes.find((v: Manifest) => v.name === 'kafka-tls'),
        {
          name: 'kafka-tls',
          secret: { secretName: 'kafka-ca' },
        },
      );
      const secret = find(docs, 'Secret', 'winchester-all');
      assert.deepEqual(Object.keys(secret.stringData).sort(), [
        'db-url',
        'registry-password',
        'registry-user',
        'sasl-password',
        'sasl-user',
      ]);
      assert.equal(secret.stringData['registry-password'], 'registry-secret');
      assert.equal(find(docs, 'PodDisruptionBudget', 'winchester-all-trigger-worker').spec.minAvailable, 1);
      assert.equal(
        find(docs, 'PodDisruptionBudget', 'winchester-all-pipeline-worker').spec.maxUnavailable,
        '50%',
      );
    });

    test('inline configuration files and extra files land in the ConfigMap', () => {
      const cm = find(docs, 'ConfigMap', 'winchester-all');
      assert.match(cm.data['winchester.yaml'], /mine: \.\/mine\.js#MyHandler/);
      assert.match(cm.data['triggers.yaml'], /name: instance_day/);
      assert.match(cm.data['mine.js'], /export class MyHandler/);
    });

    test('the Grafana dashboard ConfigMap is labelled for the sidecar and holds the dashboard', () => {
      const cm = find(docs, 'ConfigMap', 'winchester-all-dashboard');
      assert.equal(cm.metadata.namespace, 'monitoring');
      assert.equal(cm.metadata.labels.grafana_dashboard, '1');
      const dashboard = JSON.parse(cm.data['winchester.json']);
      assert.equal(dashboard.uid, 'winchester');
      assert.deepEqual(dashboard, JSON.parse(readFileSync(join(chart, 'files/dashboard.json'), 'utf8')));
    });

    test('ServiceMonitor and NetworkPolicy', () => {
      const sm = find(docs, 'ServiceMonitor', 'winchester-all');
      assert.equal(sm.metadata.labels.release, 'kube-prometheus-stack');
      assert.equal(sm.spec.endpoints[0].port, 'metrics');
      assert.equal(sm.spec.endpoints[0].interval, '15s');
      assert.equal(sm.spec.selector.matchLabels['app.kubernetes.io/component'], 'metrics');
      assert.equal(
        find(docs, 'Service', 'winchester-all-metrics').metadata.labels['app.kubernetes.io/component'],
        'metrics',
      );
      const np = find(docs, 'NetworkPolicy', 'winchester-all');
      assert.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress']);
      assert.deepEqual(np.spec.ingress[0].ports, [{ port: 'metrics', protocol: 'TCP' }]);
      assert.deepEqual(
        np.spec.egress[1].ports.map((p: Manifest) => p.port),
        [9093, 5432],
      );
      assert.equal(np.spec.egress[1].to.length, 2);
    });
  });

  test('existing Secret and ConfigMap are used instead of the chart’s, by the workers and the migration', async () => {
    const docs = render(
      '--set',
      'secrets.create=false',
      '--set',
      'secrets.existingSecret=winchester-creds',
      '--set',
      'config.existingConfigMap=winchester-conf',
      '--set',
      'kafka.sasl.mechanism=plain',
    );
    await assertValid(docs);
    assert.deepEqual(
      docs.filter((d) => d.kind === 'Secret' || d.kind === 'ConfigMap'),
      [],
      'the chart makes no Secret or ConfigMap of its own',
    );
    for (const d of docs.filter((x) => x.kind === 'Deployment' || x.kind === 'Job')) {
      const pod = d.spec.template.spec;
      const env = envOf(pod.containers[0]);
      assert.equal(env.get('WINCHESTER_DATABASE_URL')?.valueFrom.secretKeyRef.name, 'winchester-creds');
      assert.equal(
        env.get('WINCHESTER_KAFKA_SASL_USERNAME')?.valueFrom.secretKeyRef.name,
        'winchester-creds',
      );
      assert.equal(pod.volumes.find((v: Manifest) => v.name === 'config').configMap.name, 'winchester-conf');
    }
  });

  test('a changed configuration changes the pods’ checksum, so the workers roll', () => {
    const checksum = (docs: Manifest[]) =>
      find(docs, 'Deployment', 'rel-winchester-trigger-worker').spec.template.metadata.annotations[
        'checksum/config'
      ];
    assert.notEqual(checksum(render()), checksum(render('--set', 'config.triggers=[]')));
    assert.equal(checksum(render()), checksum(render('--set', 'triggerWorker.replicaCount=5')));
  });

  test('helm install --dry-run=client renders the release and its notes without a cluster', () => {
    for (const values of [[], ['-f', allOptions]]) {
      const out = ok(['install', 'rel', chart, '--namespace', 'ops', '--dry-run=client', ...values]);
      assert.match(out, /STATUS: pending-install/);
      assert.match(out, /HOOKS:[\s\S]*kind: Job/);
      assert.match(out, /NOTES:\nWinchester 0\.1\.0 is installed as release rel in namespace ops\./);
      assert.match(out, /curl -s localhost:\d+\/metrics/);
    }
  });

  describe('bad values are rejected with a message that names the problem', () => {
    const cases: [string, string, RegExp][] = [
      [
        'a string replica count',
        'triggerWorker:\n  replicaCount: two\n',
        /'\/triggerWorker\/replicaCount': got string, want integer/,
      ],
      [
        'an unknown stage',
        'triggerWorker:\n  stage: sideways\n',
        /'\/triggerWorker\/stage': value must be one of 'all', 'route', 'streams'/,
      ],
      [
        'a misspelt top-level key',
        'triggerWorkers:\n  replicaCount: 3\n',
        /additional properties 'triggerWorkers' not allowed/,
      ],
      [
        'an unknown SASL mechanism',
        'kafka:\n  sasl:\n    mechanism: gssapi\n',
        /'\/kafka\/sasl\/mechanism': value must be one of 'none', 'plain'/,
      ],
      [
        'a broker without a port',
        'kafka:\n  brokers: [kafka]\n',
        /'\/kafka\/brokers\/0': '[^']*' does not match pattern/,
      ],
      [
        'a registry URL without a scheme',
        'schemaRegistry:\n  url: registry:8081\n',
        /'\/schemaRegistry\/url': '[^']*' does not match pattern/,
      ],
      [
        'a database URL that is not postgres',
        'database:\n  url: mysql://x@y/z\n',
        /'\/database\/url': '[^']*' does not match pattern/,
      ],
      [
        'a bad resource quantity',
        'pipelineWorker:\n  resources:\n    limits:\n      memory: lots\n',
        /'\/pipelineWorker\/resources\/limits\/memory'/,
      ],
      [
        'a metrics port out of range',
        'metrics:\n  port: 70000\n',
        /'\/metrics\/port': maximum: got 70,000, want 65,535/,
      ],
    ];
    for (const [what, values, message] of cases) {
      test(`${what}: helm lint and helm template fail`, () => {
        const file = writeValues(`bad-${what.replace(/\W+/g, '-')}.yaml`, values);
        for (const cmd of [
          ['lint', chart, '-f', file],
          ['template', 'rel', chart, '-f', file],
        ]) {
          const r = helm(cmd);
          assert.notEqual(r.status, 0, `helm ${cmd[0]} accepted ${what}`);
          assert.match(`${r.stdout}${r.stderr}`, message);
          assert.match(`${r.stdout}${r.stderr}`, /values don't meet the specifications of the schema/);
        }
      });
    }

    const checks: [string, string[], RegExp][] = [
      [
        'both an HPA and KEDA',
        ['--set', 'triggerWorker.autoscaling.enabled=true', '--set', 'triggerWorker.keda.enabled=true'],
        /triggerWorker: autoscaling\.enabled and keda\.enabled both set/,
      ],
      [
        'SASL without credentials',
        ['--set', 'kafka.sasl.mechanism=plain'],
        /kafka\.sasl\.mechanism is plain: set kafka\.sasl\.username and kafka\.sasl\.password/,
      ],
      [
        'registry basic auth without credentials',
        ['--set', 'schemaRegistry.basicAuth=true', '--set', 'schemaRegistry.username=w'],
        /schemaRegistry\.basicAuth is true: set schemaRegistry\.username and schemaRegistry\.password/,
      ],
      [
        'no Secret at all',
        ['--set', 'secrets.create=false'],
        /secrets\.existingSecret is required when secrets\.create is false/,
      ],
      [
        'a PDB with both bounds',
        [
          '--set',
          'pipelineWorker.podDisruptionBudget.enabled=true',
          '--set',
          'pipelineWorker.podDisruptionBudget.minAvailable=1',
        ],
        /pipelineWorker\.podDisruptionBudget: set minAvailable or maxUnavailable, not both/,
      ],
      [
        'a ServiceMonitor without the Service',
        ['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.service.enabled=false'],
        /metrics\.serviceMonitor\.enabled needs metrics\.service\.enabled/,
      ],
    ];
    for (const [what, args, message] of checks) {
      test(`${what}: helm template fails`, () => {
        const r = helm(['template', 'rel', chart, ...args]);
        assert.notEqual(r.status, 0, `helm template accepted ${what}`);
        assert.match(r.stderr, message);
      });
    }
  });
});
