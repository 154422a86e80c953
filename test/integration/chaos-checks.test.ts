/**
 * The chaos suite's own judges (no services needed): the recording handler keeps one effect per batch
 * however often commit() runs, and logs every call; a repeated commit() is accepted only as the crash
 * window; the batch comparison names what is missing and what is extra.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RecordingHandler } from '../chaos/recording-handler.js';
import { differences, readRecorded, repeatedCommits } from '../chaos/verify.js';

function scratch(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'winchester-chaos-checks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const env = (batchId: string) => ({
  batch_id: batchId,
  stream_id: 's1',
  stream_name: 'test_trigger',
  trigger: 'test_trigger',
  kind: 'fire' as const,
  pipeline: 'p',
  distinguishing: {},
});
const events = [{ message_id: 'm1' }, { message_id: 'm2' }];

async function commitOnce(dir: string, batchId: string): Promise<void> {
  const h = new RecordingHandler({ dir });
  h.handleEvents(events, env(batchId));
  await h.commit();
}

test('recording handler: commit() three times (two at once) leaves one effect and three logged calls', async (t) => {
  const dir = scratch(t);
  await commitOnce(dir, 'b/1');
  await Promise.all([commitOnce(dir, 'b/1'), commitOnce(dir, 'b/1')]);
  await commitOnce(dir, 'b2');
  const r = readRecorded(dir);
  assert.deepEqual([...r.effects.keys()].sort(), ['b/1', 'b2']);
  assert.equal(r.effects.get('b/1')?.fingerprint, 'fire test_trigger m1,m2');
  assert.equal(r.calls.get('b/1')?.length, 3);
  assert.equal(r.callCount, 4);
  assert.deepEqual(
    readdirSync(join(dir, 'effects')).filter((n) => n.endsWith('.tmp')),
    [],
    'no temporary file left behind',
  );
});

test('recording handler: refuses to start without its directory', () => {
  assert.throws(() => new RecordingHandler({}), /param 'dir'/);
});

test('a repeated commit() is the crash window only when the earlier caller was killed before recording completion', () => {
  const calls = new Map([
    [
      'window',
      [
        { pid: 1, at: 1 },
        { pid: 2, at: 2 },
      ],
    ],
    [
      'live',
      [
        { pid: 3, at: 1 },
        { pid: 2, at: 2 },
      ],
    ],
    [
      'after-completion',
      [
        { pid: 4, at: 1 },
        { pid: 2, at: 2 },
      ],
    ],
    ['once', [{ pid: 3, at: 1 }]],
  ]);
  const { repeated, unexplained } = repeatedCommits(
    { calls },
    new Set([1, 4]),
    new Map([[4, new Set(['after-completion'])]]),
  );
  assert.equal(repeated, 3);
  assert.equal(unexplained.length, 2);
  assert.match(unexplained[0] as string, /^live: commit\(\) by pid 3 \(not killed/);
  assert.match(unexplained[1] as string, /^after-completion: .*\(killed, had recorded it complete\)/);
});

test('differences: a missing, an extra and a doubled line are each reported', () => {
  const d = differences(['a', 'b', 'b', 'x'], ['a', 'b', 'c'], (l) => l);
  assert.deepEqual(d, { missing: ['c'], extra: ['b', 'x'], missingCount: 1, extraCount: 2 });
  assert.deepEqual(
    differences(['b', 'a'], ['a', 'b'], (l) => l),
    {
      missing: [],
      extra: [],
      missingCount: 0,
      extraCount: 0,
    },
  );
});
