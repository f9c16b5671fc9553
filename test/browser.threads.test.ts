import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module of build options, no declarations
import { browserOptions } from '../scripts/browser-build.mjs';
import type { CrcResult, ThreadsResult } from './browser/threads-harness.js';
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

  async function harness<T>(isolated: boolean, run: 'runThreads' | 'runCrc', policy = ''): Promise<T> {
    const site = tempDir('modelbridge-threads-');
    await build({ ...(browserOptions as object), entryPoints: ['test/browser/threads-harness.ts'], outfile: join(site, 'harness.js') });
    const csp = policy ? `<meta http-equiv="Content-Security-Policy" content="${policy}">` : '';
    writeFileSync(join(site, 'index.html'), `<!doctype html><meta charset="utf-8">${csp}<script type="module" src="harness.js"></script>`);
    const served = await serve(site, { isolated });
    servers.push(served.server);
    browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${served.origin}/index.html`);
    await page.waitForFunction(() => (globalThis as { harnessReady?: boolean }).harnessReady === true);
    const result = (await page.evaluate((name) => (globalThis as unknown as Record<string, () => Promise<unknown>>)[name]!(), run)) as T;
    expect(errors).toEqual([]);
    await page.close();
    return result;
  }

  it('runs an MLP on two threads (the page and a Web Worker) with the outputs of one thread', async () => {
    const r = await harness<ThreadsResult>(true, 'runThreads');
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
    const r = await harness<ThreadsResult>(false, 'runThreads');
    expect(r.isolated).toBe(false);
    expect(r.started).toBe(1);
    expect(r.workers).toBe(0);
    expect(r.runsTwo).toBe(0);
    expect(r.identical).toBe(true);
  }, 120_000);

  it("stays on one thread, checksums inline, where the page's policy forbids blob: workers", async () => {
    const r = await harness<ThreadsResult>(true, 'runThreads', "worker-src 'self'");
    expect(r.isolated).toBe(true);
    expect(r.started).toBe(1);
    expect(r.workers).toBe(0);
    expect(r.runsTwo).toBe(0);
    expect(r.identical).toBe(true);
    const c = await harness<CrcResult>(true, 'runCrc', "worker-src 'self'");
    expect(c.started).toBe(1);
    expect(c.streamsAfter).toBe(0);
    expect(c.sameIndex).toBe(true);
    expect(c.roundTrip).toBe(true);
  }, 120_000);

  it('checksums a large checkpoint tensor on a Web Worker, with the CRC-32C computed inline', async () => {
    const r = await harness<CrcResult>(true, 'runCrc');
    expect(r.started).toBe(2);
    // Before startThreads the worker cannot have started: the 12 MiB tensor was checksummed inline.
    expect(r.streamsBefore).toBe(0);
    expect(r.streamsAfter).toBeGreaterThan(0);
    expect(r.sameIndex).toBe(true);
    expect(r.roundTrip).toBe(true);
    expect(r.corrupted).toMatch(/^error: big\/variables\/variables\.data-00000-of-00001: tensor "w" at byte 0: data matching its checksum 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/);
  }, 120_000);
});
