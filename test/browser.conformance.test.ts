import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { zipSync } from 'fflate';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module of build options, no declarations
import { browserOptions } from '../scripts/browser-build.mjs';
import type { CaseFiles, CaseResult } from './browser/conformance-harness.js';
import { CHROMIUM, chromiumPresent, serve } from './browser-helpers.js';
import { FIXTURES, tempDir } from './cli-helpers.js';

/**
 * The ONNX backend node tests (test/fixtures/upstream/onnx/node), run in Chromium by the code of
 * the browser bundle: the same cases pass as in Node (test/onnx-conformance.test.ts), the same
 * known failures fail, and the WebAssembly kernel is the one that computed them.
 */
const NODE_TESTS = join(FIXTURES, 'onnx', 'node');
/** As in test/onnx-conformance.test.ts. */
const MIN_TRIED = 1213;
const KNOWN_FAILURES = ['test_training_dropout', 'test_training_dropout_default', 'test_training_dropout_default_mask', 'test_training_dropout_mask'];

function cases(): CaseFiles[] {
  return readdirSync(NODE_TESTS)
    .sort()
    .filter((name) => existsSync(join(NODE_TESTS, name, 'model.onnx')))
    .map((name) => ({
      name,
      sets: readdirSync(join(NODE_TESTS, name))
        .filter((f) => f.startsWith('test_data_set_'))
        .sort()
        .map((set) => ({ name: set, files: readdirSync(join(NODE_TESTS, name, set)).filter((f) => f.endsWith('.pb')) })),
    }));
}

const present = chromiumPresent();

describe.skipIf(!present || !existsSync(NODE_TESTS))('ONNX conformance in Chromium', () => {
  let browser: Browser | undefined;
  let server: Server | undefined;

  afterAll(async () => {
    await browser?.close();
    server?.close();
  });

  it('passes the cases Node passes, on the browser bundle', async () => {
    const site = tempDir('modelbridge-conformance-');
    await build({ ...(browserOptions as object), entryPoints: ['test/browser/conformance-harness.ts'], outfile: join(site, 'harness.js') });
    writeFileSync(join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="harness.js"></script>');
    const list = cases();
    const zip: Record<string, Uint8Array> = {};
    for (const c of list) {
      zip[`${c.name}/model.onnx`] = readFileSync(join(NODE_TESTS, c.name, 'model.onnx'));
      for (const set of c.sets) for (const f of set.files) zip[`${c.name}/${set.name}/${f}`] = readFileSync(join(NODE_TESTS, c.name, set.name, f));
    }
    writeFileSync(join(site, 'onnx.zip'), zipSync(zip, { level: 0 }));
    const served = await serve(site);
    server = served.server;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const page = await browser.newPage();
    await page.goto(`${served.origin}/index.html`);
    await page.waitForFunction(() => (globalThis as { harnessReady?: boolean }).harnessReady === true);
    const { kernel, results } = (await page.evaluate(
      (c) => (globalThis as unknown as { runConformance: (c: CaseFiles[]) => Promise<{ kernel: string; results: CaseResult[] }> }).runConformance(c),
      list,
    )) as { kernel: string; results: CaseResult[] };
    expect(results.length).toBe(list.length);
    const tried = results.filter((r) => r.status === 'pass' || r.status === 'fail');
    const failed = tried.filter((r) => r.status === 'fail');
    expect(tried.length).toBeGreaterThanOrEqual(MIN_TRIED);
    expect(failed.map((r) => `${r.name}: ${r.message}`).filter((m) => !KNOWN_FAILURES.some((k) => m.startsWith(`${k}:`)))).toEqual([]);
    expect(failed.map((r) => r.name).sort()).toEqual(KNOWN_FAILURES);
    expect(kernel).toMatch(/^(relaxed-simd|simd128)$/);
  }, 240_000);
});
