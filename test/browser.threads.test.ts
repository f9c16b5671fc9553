import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module of build options, no declarations
import { browserOptions } from '../scripts/browser-build.mjs';
import type { ThreadsResult } from './browser/threads-harness.js';
import { CHROMIUM, chromiumPresent, serve } from './browser-helpers.js';
import { tempDir } from './cli-helpers.js';

/**
 * The browser build's intra-op threads are Web Workers (src/core/threads-web.ts) on the same
 * shared WebAssembly memory as the page: in Chromium, on a cross-origin isolated page, an MLP runs
 * with two threads (the pool's workers take part) and gives bit for bit what one thread gives;
 * on a page without COOP/COEP the same call settles for one thread and still runs.
 */
const present = chromiumPresent();

describe.skipIf(!present)('Web Worker threads in Chromium', () => {
  let browser: Browser | undefined;
  const servers: Server[] = [];

  afterAll(async () => {
    await browser?.close();
    for (const s of servers) s.close();
  });

  async function harness(isolated: boolean): Promise<ThreadsResult> {
    const site = tempDir('modelbridge-threads-');
    await build({ ...(browserOptions as object), entryPoints: ['test/browser/threads-harness.ts'], outfile: join(site, 'harness.js') });
    writeFileSync(join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="harness.js"></script>');
    const served = await serve(site, { isolated });
    servers.push(served.server);
    browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${served.origin}/index.html`);
    await page.waitForFunction(() => (globalThis as { harnessReady?: boolean }).harnessReady === true);
    const result = await page.evaluate(() => (globalThis as unknown as { runThreads: () => Promise<ThreadsResult> }).runThreads());
    expect(errors).toEqual([]);
    await page.close();
    return result;
  }

  it('runs an MLP on two threads (the page and a Web Worker) with the outputs of one thread', async () => {
    const r = await harness(true);
    expect(r.isolated).toBe(true);
    expect(r.kernel).toMatch(/^(relaxed-simd|simd128)$/);
    expect(r.started).toBe(2);
    expect(r.workers).toBe(1);
    // Before startThreads the worker cannot have started (it needs the page to yield): one thread ran.
    expect(r.runsBeforeStart).toBe(0);
    expect(r.runsOne).toBe(0);
    expect(r.runsTwo).toBeGreaterThan(0);
    expect(r.outputs).toBe(64 * 256);
    expect(r.maxAbs).toBe(0);
    expect(r.identical).toBe(true);
  }, 120_000);

  it('stays on one thread on a page that is not cross-origin isolated', async () => {
    const r = await harness(false);
    expect(r.isolated).toBe(false);
    expect(r.started).toBe(1);
    expect(r.workers).toBe(0);
    expect(r.runsTwo).toBe(0);
    expect(r.identical).toBe(true);
  }, 120_000);
});
