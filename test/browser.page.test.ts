import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { dirname, join } from 'node:path';
import { unzipSync } from 'fflate';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM, chromiumPresent, serve } from './browser-helpers.js';
// @ts-expect-error: a plain ES module of build options, no declarations
import { browserOptions } from '../scripts/browser-build.mjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orBatch } from '../src/api/demo.js';
import { loadModel } from '../src/api/load.js';
import { runModel } from '../src/api/run.js';
import { ROOT, tempDir } from './cli-helpers.js';

/**
 * The web page in a real browser: Debian's Chromium (scripts/browser-env.sh installs it in CI),
 * driven by playwright-core, never a downloaded browser build. The page is served by a static
 * server on loopback; the test loads each samples/or-gate model through the page's file inputs,
 * runs the OR gate, converts to every format and reads each download back with the Node readers.
 * Without Chromium the suite skips with the reason; under CI=true that is a failure.
 */
const SAMPLES = join(ROOT, 'samples', 'or-gate');
const OR_INPUT = '[[0,0],[0,1],[1,0],[1,1]]';

const present = chromiumPresent();

describe.skipIf(!present)('the web page in Chromium', () => {
  let browser: Browser;
  let page: Page;
  let server: Server;
  let origin: string;
  const requests: string[] = [];
  const out = tempDir('modelbridge-web-');

  beforeAll(async () => {
    const site = join(out, 'site');
    const built = spawnSync(process.execPath, ['scripts/web.mjs', site], { cwd: ROOT, encoding: 'utf8' });
    expect(built.status, built.stderr).toBe(0);
    await build({ ...(browserOptions as object), entryPoints: ['test/browser/worker-harness.ts'], outfile: join(site, 'worker.js') });
    ({ server, origin } = await serve(site));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const context = await browser.newContext({ acceptDownloads: true });
    page = await context.newPage();
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${origin}/index.html`);
    await page.waitForSelector('body[data-state="idle"]');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    server?.close();
  });

  /** Opens files (or a folder) through the page's inputs and waits for the model. */
  async function open(input: 'file' | 'folder', paths: string | string[]): Promise<void> {
    await page.setInputFiles(`#${input}`, paths);
    await page.waitForSelector('body[data-state="idle"]');
    const error = await page.textContent('#error');
    expect(error).toBe('');
    await page.waitForSelector('#model-section:not([hidden])');
  }

  async function predict(): Promise<number[]> {
    await page.fill('#inputs textarea', OR_INPUT);
    await page.click('#run');
    await page.waitForSelector('body[data-state="idle"]');
    expect(await page.textContent('#error')).toBe('');
    const shown = JSON.parse((await page.textContent('#run-output'))!) as Record<string, number[][]>;
    return Object.values(shown)[0]!.flat();
  }

  const expected = runModel(loadModel(join(SAMPLES, 'or-gate.safetensors')), { x: orBatch() })['y']!.toNumbers();

  const samples: Array<[string, 'file' | 'folder', string | string[], string]> = [
    ['or-gate.safetensors', 'file', join(SAMPLES, 'or-gate.safetensors'), 'safetensors'],
    ['or-gate.onnx', 'file', join(SAMPLES, 'or-gate.onnx'), 'onnx'],
    ['or-gate.pt', 'file', join(SAMPLES, 'or-gate.pt'), 'pytorch'],
    ['or-gate.pt2', 'file', join(SAMPLES, 'or-gate.pt2'), 'pt2'],
    ['or-gate.pb', 'file', join(SAMPLES, 'or-gate.pb'), 'graphdef'],
    ['or-gate.tflite', 'file', join(SAMPLES, 'or-gate.tflite'), 'tflite'],
    // HDF5 through h5wasm on the page's thread, loaded from the page's own file with the first one.
    ['or-gate.keras', 'file', join(SAMPLES, 'or-gate.keras'), 'keras'],
    ['or-gate.h5', 'file', join(SAMPLES, 'or-gate.h5'), 'h5'],
    ['or-gate.json', 'file', [join(SAMPLES, 'or-gate.json'), join(SAMPLES, 'or-gate.group1-shard1of1.bin')], 'tfjs'],
    ['or-gate-savedmodel', 'folder', join(SAMPLES, 'or-gate-savedmodel'), 'savedmodel'],
  ];

  for (const [name, input, paths, format] of samples) {
    it(`opens ${name}, shows it and gives the OR gate's four predictions`, async () => {
      await open(input, paths);
      expect(await page.textContent('dd[data-key="format"]')).toBe(format);
      expect(await page.textContent('dd[data-key="file"]')).toBe(name);
      const y = await predict();
      expect(y.map((v) => Math.round(v))).toEqual([0, 1, 1, 1]);
      // The same runtime as in Node: within float32 rounding of the Node CLI's answers.
      for (let i = 0; i < 4; i++) expect(Math.abs(y[i]! - expected[i]!)).toBeLessThan(1e-6);
    }, 30_000);
  }

  it('converts to every format with verification; the downloads read back in Node', async () => {
    await open('file', join(SAMPLES, 'or-gate.pt'));
    const formats = await page.$$eval('#to option', (os) => os.map((o) => (o as unknown as { value: string }).value));
    expect(formats.sort()).toEqual(['graphdef', 'h5', 'keras', 'onnx', 'pt2', 'pytorch', 'safetensors', 'savedmodel', 'tfjs', 'tflite']);
    for (const format of formats) {
      await page.selectOption('#to', format);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#convert')]);
      await page.waitForSelector('body[data-state="idle"]');
      expect(await page.textContent('#error')).toBe('');
      expect(await page.textContent('#convert-output')).toMatch(/^verified: 4 tensors bit-identical .*max abs error 0/);
      const dir = join(out, 'downloads', format);
      mkdirSync(dir, { recursive: true });
      const saved = join(dir, download.suggestedFilename());
      await download.saveAs(saved);
      let modelPath = saved;
      if (saved.endsWith('.zip')) {
        const entries = unzipSync(new Uint8Array(readFileSync(saved)));
        for (const [k, v] of Object.entries(entries)) {
          mkdirSync(dirname(join(dir, k)), { recursive: true });
          writeFileSync(join(dir, k), v);
        }
        modelPath = format === 'savedmodel' ? join(dir, 'or-gate') : join(dir, Object.keys(entries).find((k) => k.endsWith('.json'))!);
      }
      if (format === 'keras' || format === 'h5') {
        // h5wasm on the page's thread writes the bytes the CLI's worker thread writes (HDF5's clock held at 0 on both).
        const cli = join(dir, `cli-${download.suggestedFilename()}`);
        const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'modelbridge.cjs'), 'convert', join(SAMPLES, 'or-gate.pt'), cli], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        expect(Buffer.compare(readFileSync(saved), readFileSync(cli)), format).toBe(0);
      }
      const model = loadModel(modelPath);
      expect(model.format).toBe(format);
      const y = runModel(model, { x: orBatch() })['y']!.toNumbers();
      expect(y.map((v) => Math.round(v)), format).toEqual([0, 1, 1, 1]);
    }
  }, 120_000);

  it('diffs two models', async () => {
    await open('file', join(SAMPLES, 'or-gate.safetensors'));
    await page.setInputFiles('#other', join(SAMPLES, 'or-gate.onnx'));
    await page.waitForSelector('#diff-output[data-status]');
    expect(await page.getAttribute('#diff-output', 'data-status')).toBe('equal');
  }, 30_000);

  // A truncated HDF5 file goes through h5wasm on the page's thread as through the CLI's worker thread.
  for (const [name, sample, keep] of [['bad.onnx', 'or-gate.onnx', 40], ['bad.h5', 'or-gate.h5', 2048]] as const) {
    it(`shows an unreadable file as the CLI does, in one line (${name})`, async () => {
      const bad = join(out, name);
      writeFileSync(bad, readFileSync(join(SAMPLES, sample)).subarray(0, keep));
      await page.setInputFiles('#file', bad);
      await page.waitForSelector('body[data-state="idle"]');
      const cli = spawnSync(process.execPath, [join(ROOT, 'bin', 'modelbridge.cjs'), 'inspect', name], { cwd: out, encoding: 'utf8' });
      expect(cli.status).toBe(2);
      expect(cli.stderr.trim().split('\n')).toHaveLength(1);
      expect(await page.textContent('#error')).toBe(cli.stderr.trim());
    }, 30_000);
  }

  it('runs products in the WebAssembly kernel, on Web Workers too (the page is cross-origin isolated)', async () => {
    expect(await page.getAttribute('#kernel', 'data-kernel')).toMatch(/^(relaxed-simd|simd128)$/);
    // The page starts a thread per core, at most 4 (Chromium reports the machine's cores).
    const cores = await page.evaluate(() => (globalThis as unknown as { navigator: { hardwareConcurrency: number } }).navigator.hardwareConcurrency);
    expect(await page.getAttribute('#kernel', 'data-threads')).toBe(String(Math.min(cores, 4)));
    expect(await page.textContent('#kernel')).toContain(cores === 1 ? 'one thread' : `${Math.min(cores, 4)} threads`);
  });

  it('reads a File in a Web Worker, a slice at a time', async () => {
    const bytes = [...readFileSync(join(SAMPLES, 'or-gate.tflite'))];
    const result = await page.evaluate(
      (b) =>
        new Promise<{ y?: number[]; syncReads?: boolean; error?: string }>((resolve) => {
          const W = (globalThis as unknown as { Worker: new (url: string, o: object) => { onmessage: (e: { data: unknown }) => void; postMessage: (m: unknown) => void } }).Worker;
          const F = (globalThis as unknown as { File: new (parts: unknown[], name: string) => unknown }).File;
          const worker = new W('worker.js', { type: 'module' });
          worker.onmessage = (e) => resolve(e.data as { y?: number[] });
          worker.postMessage({ file: new F([new Uint8Array(b)], 'or-gate.tflite') });
        }),
      bytes,
    );
    expect(result.error).toBeUndefined();
    expect(result.syncReads).toBe(true);
    expect(result.y!.map((v) => Math.round(v))).toEqual([0, 1, 1, 1]);
  }, 30_000);

  it('loaded nothing but its own files', () => {
    expect(requests.length).toBeGreaterThanOrEqual(3);
    expect(requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:'))).toEqual([]);
  });
});
