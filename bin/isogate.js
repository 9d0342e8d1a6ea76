#!/usr/bin/env -S node --no-node-snapshot
// The entry point, in plain JavaScript on purpose: Node before 24 cannot load a .ts file,
// so the version check has to run before anything imports TypeScript. Keep this file
// loadable by any Node that still runs ES modules.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(`Isogate needs Node.js 24 or newer; found ${process.versions.node}\n`);
  process.exit(1);
}
// No top-level await here: a Node too old for it must still reach the line above.
import('../core/cli.ts').catch((err) => {
  process.stderr.write(`${err instanceof Error && err.stack !== undefined ? err.stack : String(err)}\n`);
  process.exit(1);
});
