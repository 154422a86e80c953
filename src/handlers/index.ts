/**
 * The built-in handler classes by their pipelines.yaml name. A name of BUILTIN_HANDLERS missing here is
 * reported by the registry at start ("not available in this build"), never at the first batch.
 */
import type { BuiltinHandler } from '../pipeline/definitions.js';
import type { HandlerClass } from '../pipeline/handler.js';
import { AtomPubHandler } from './atompub.js';
import { LoggerHandler } from './logger.js';
import { NotabeneHandler } from './notabene.js';
import { UsageHandler } from './usage.js';
import { WebhookHandler } from './webhook.js';

export const BUILTIN_HANDLER_CLASSES: Readonly<Partial<Record<BuiltinHandler, HandlerClass>>> = Object.freeze(
  {
    logger: LoggerHandler,
    notabene: NotabeneHandler,
    usage: UsageHandler,
    atompub: AtomPubHandler,
    webhook: WebhookHandler,
  },
);
