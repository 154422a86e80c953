import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The installed launcher (bin/winchester.js → dist/), as `npx winchester` runs it after `npm ci`.
const bin = fileURLToPath(new URL('../../../bin/winchester.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

describe('winchester launcher', () => {
  test('--help lists every subcommand and exits 0', () => {
    const r = run('--help');
    assert.equal(r.status, 0, r.stderr);
    for (const name of ['check', 'distill', 'generate', 'replay', 'timex']) {
      assert.match(r.stdout, new RegExp(`^  ${name} `, 'm'));
    }
  });

  test('--version prints the package version', () => {
    const r = run('--version');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^winchester \d+\.\d+\.\d+\n$/);
  });

  test('an unknown subcommand is a usage error: exit 2, a hint, no stack trace', () => {
    const r = run('frobnicate');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
    assert.match(r.stderr, /winchester --help/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('no subcommand prints the help on stdout and exits 2', () => {
    const r = run();
    assert.equal(r.status, 2);
    assert.match(r.stdout, /^Usage: winchester/);
  });

  test('a reader that closes the pipe early ends the output quietly (exit 0, no EPIPE trace)', async () => {
    const child = spawn(process.execPath, [bin, 'generate', '--instances', '200', '--days', '5'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|\n\s+at /);
  });
});
