// Runs the CLI from the TypeScript sources in a child process (like bin/winchester.js does with dist/),
// so tests can signal and kill real worker processes: `node --import tsx test/helpers/winchester-entry.ts ARGS`.
import { main } from '../../src/main.js';

process.exitCode = await main(process.argv.slice(2));
// As bin/winchester.js: a library's pending timer must not keep a finished command alive.
setTimeout(() => process.exit(), 3000).unref();
