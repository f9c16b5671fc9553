#!/usr/bin/env node
'use strict';
// The CLI is bundled into dist/cli.cjs by `npm ci` (the prepare script). It is compiled here with
// a V8 code cache kept beside it (dist/cli.cjs.cache): compiling the bundle is most of a cold
// start, and Node 20 caches no compiled code by itself. A missing, stale or unwritable cache
// only costs speed. This file is CommonJS because loading an ES module costs more than the rest.
const { existsSync, readFileSync, renameSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

const file = join(__dirname, '..', 'dist', 'cli.cjs');
if (!existsSync(file)) {
  process.stderr.write('error: modelbridge is not built: run `npm ci` (or `npm run build`) in its folder\n');
  process.exit(70);
}
const cacheFile = `${file}.cache`;
let cachedData;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  cachedData = undefined;
}
const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
if (cachedData === undefined || script.cachedDataRejected) {
  // At exit the functions this run compiled are in the cache too; commands may exit early.
  process.once('exit', () => {
    try {
      const temp = `${cacheFile}.${process.pid}.tmp`;
      writeFileSync(temp, script.createCachedData());
      renameSync(temp, cacheFile);
    } catch {
      // A read-only install: run without a cache.
    }
  });
}
const cli = { exports: {} };
script.runInThisContext()(cli.exports, Module.createRequire(file), cli, file, dirname(file));
// Loading the bundle starts nothing (so serve's worker threads can load it too: src/cli/main.ts).
cli.exports.run();
