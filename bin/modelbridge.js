#!/usr/bin/env node
// The same CLI from an ES module path; the package's bin is bin/modelbridge.cjs, which starts faster.
import { createRequire } from 'node:module';

createRequire(import.meta.url)('./modelbridge.cjs');
