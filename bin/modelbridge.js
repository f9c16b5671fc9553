#!/usr/bin/env node
// The CLI is bundled into dist/ by `npm ci` (the prepare script) for a fast start.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('error: modelbridge is not built: run `npm ci` (or `npm run build`) in its folder\n');
  process.exit(70);
}
await import(cli.href);
