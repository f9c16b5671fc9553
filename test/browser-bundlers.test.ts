import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { build } from 'vite';
import { ROOT, tempDir } from './cli-helpers.js';

/**
 * A consumer's Vite build of `import ... from 'modelbridge'`, with no configuration: Vite picks the
 * package's "browser" export (dist/browser.js, built by the suite's global setup), the result
 * has no Node import, and it runs the OR gate from bytes. (webpack is not among the dev
 * dependencies, so it is not tried here.)
 */
describe('bundlers', () => {
  it('Vite bundles the browser export without configuration, and the bundle runs', async () => {
    const dir = tempDir('modelbridge-vite-');
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules', 'modelbridge'), 'dir');
    writeFileSync(
      join(dir, 'main.js'),
      "import { readModel, runModel, Tensor } from 'modelbridge';\n" +
        'export async function orGate(bytes) {\n' +
        "  const model = await readModel(bytes, { name: 'or-gate.onnx' });\n" +
        "  return runModel(model, { x: Tensor.from('float32', [4, 2], [0, 0, 0, 1, 1, 0, 1, 1]) }).y.toNumbers();\n" +
        '}\n',
    );
    await build({ root: dir, logLevel: 'silent', configFile: false, build: { outDir: join(dir, 'out'), minify: false, lib: { entry: join(dir, 'main.js'), formats: ['es'], fileName: () => 'app.js' } } });
    const out = join(dir, 'out', 'app.js');
    const code = readFileSync(out, 'utf8');
    // The browser build it is (its stand-in for the file system), not the Node one shimmed by Vite.
    expect(code).toContain('there is no file system here');
    expect(code).not.toContain('__vite-browser-external');
    expect(/\bimport\s*[{*\w][^;"'`]*from\s*["']node:/.test(code)).toBe(false);
    const { orGate } = (await import(pathToFileURL(out).href)) as { orGate: (b: Uint8Array) => Promise<number[]> };
    const y = await orGate(new Uint8Array(readFileSync(join(ROOT, 'samples', 'or-gate', 'or-gate.onnx'))));
    expect(y.map((v) => Math.round(v))).toEqual([0, 1, 1, 1]);
  }, 120_000);
});
