// Types of recording-handler.js, a plain JS module on purpose (it is loaded the way a user's handler is).
import type { Event } from '../../src/model/event.js';
import type { Handler, HandlerEnv } from '../../src/pipeline/handler.js';

export declare class RecordingHandler implements Handler {
  constructor(params: Readonly<Record<string, unknown>>);
  handleEvents(events: readonly Pick<Event, 'message_id'>[], env: HandlerEnv): Event[];
  commit(): Promise<void>;
  rollback(): void;
}
