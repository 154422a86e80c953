/**
 * The chaos suite's pipeline handler: a user handler module (`pipeline_handlers: recorder:
 * ./recording-handler.js#RecordingHandler`) written the way the handler contract asks a real one to be
 * (src/pipeline/handler.ts, docs/handlers.md):
 *
 * - `handleEvents` only remembers the batch (it may run again on a retry);
 * - `commit()` makes the side effect idempotent by `env.batch_id`: the effect is a file named after the
 *   batch id, written to a temporary name, fsync'd, then hard-linked into place. link() fails with EEXIST
 *   when the file is already there, atomically, so a second commit() of the same batch (a redelivery after
 *   a crash between commit() and the completion record) finds its effect made and changes nothing.
 *
 * So that the suite can see how often commit() really ran, every call is first appended (and fsync'd) to
 * a per-process call log, `calls/<pid>.log`, one JSON line per call. And when the suite drops a file
 * `die/<pid>` for this process, the process SIGKILLs itself right after its next commit(), before the
 * worker can record the batch complete: the one window in which a crash runs commit() again.
 *
 * Params: `dir` (required): where `effects/`, `calls/` and `die/` live.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, open, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';

async function writeDurably(path, text, flags) {
  const file = await open(path, flags);
  try {
    await file.write(text);
    await file.sync();
  } finally {
    await file.close();
  }
}

async function exists(path) {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export class RecordingHandler {
  constructor(params) {
    if (typeof params.dir !== 'string' || params.dir === '') {
      throw new Error("recorder: param 'dir' (the directory effects are recorded in) is required");
    }
    this.dir = params.dir;
  }

  handleEvents(events, env) {
    this.env = env;
    this.messageIds = events.map((e) => e.message_id);
    return events;
  }

  async commit() {
    const env = this.env;
    const name = encodeURIComponent(env.batch_id);
    await mkdir(join(this.dir, 'calls'), { recursive: true });
    await mkdir(join(this.dir, 'effects'), { recursive: true });
    const call = { batch_id: env.batch_id, pid: process.pid, at: Date.now() };
    await writeDurably(join(this.dir, 'calls', `${process.pid}.log`), `${JSON.stringify(call)}\n`, 'a');

    const effect = {
      batch_id: env.batch_id,
      stream_id: env.stream_id,
      trigger: env.trigger,
      kind: env.kind,
      pipeline: env.pipeline,
      message_ids: this.messageIds,
      pid: process.pid,
    };
    const target = join(this.dir, 'effects', `${name}.json`);
    // Unique per call: two deliveries of one batch may commit at the same moment.
    const temporary = `${target}.${randomUUID()}.tmp`;
    await writeDurably(temporary, JSON.stringify(effect), 'w');
    try {
      await link(temporary, target);
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      // Made by an earlier delivery of this batch: the effect stands as it is.
    } finally {
      await unlink(temporary);
    }

    const die = join(this.dir, 'die', String(process.pid));
    if (await exists(die)) process.kill(process.pid, 'SIGKILL');
  }

  rollback() {}
}
