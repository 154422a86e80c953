import { checkCommand } from './check.js';
import { dbCommand } from './db.js';
import { distillCommand } from './distill.js';
import { generateCommand } from './generate.js';
import type { Command } from './io.js';
import { pipelineWorkerCommand } from './pipeline-worker.js';
import { produceCommand } from './produce.js';
import { replayCommand } from './replay.js';
import { streamsCommand } from './streams.js';
import { timexCommand } from './timex.js';
import { triggerWorkerCommand } from './trigger-worker.js';

/**
 * Every subcommand, in the order `winchester --help` lists them.
 * Commands register here; main.ts only dispatches.
 */
export const commands: readonly Command[] = [
  checkCommand,
  dbCommand,
  distillCommand,
  generateCommand,
  pipelineWorkerCommand,
  produceCommand,
  replayCommand,
  streamsCommand,
  timexCommand,
  triggerWorkerCommand,
];
