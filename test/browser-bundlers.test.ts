import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { build } from 'vite';
import webpack from 'webpack';
import { createRequire } from 'node:module';
import { ROOT, tempDir } from './cli-helpers.js';

/**
 * A consumer's Vite build of `import ... from 'modelbridge'`, with no configuration: Vite picks the
 * package's "browser" export (dist/browser.js, built by the suite's global setup), the result
 * has no Node import, and it runs the OR gate from bytes. The same with webpack 5 (target web,
 * no resolve aliases or fallbacks for Node modules: the only settings are where the entry is and
 * that the output is a CommonJS library this test can require).
 */
describe('bundlers', () => {
  it('Vite bundles the browser export without configuration, and the bundle runs', async () => {
    const dir = consumer('modelbridge-vite-');
    await build({ root: dir, logLevel: 'silent', configFile: false, build: { outDir: join(dir, 'out'), minify: false, lib: { entry: join(dir, 'main.js'), formats: ['es'], fileName: () => 'app.js' } } });
    const out = join(dir, 'out', 'app.js');
    const code = readFileSync(out, 'utf8');
    // The browser build it is (its stand-in for the file system), not the Node one shimmed by Vite.
    expect(code).toContain('there is no file system here');
    expect(code).not.toContain('__vite-browser-external');
    expect(/\bimport\s*[{*\w][^;"'`]*from\s*["']node:/.test(code)).toBe(false);
    // h5wasm (Keras files) is a chunk of its own, imported with the first Keras file.
    expect(code).not.toContain('H5Fopen');
    expect(readdirSync(join(dir, 'out')).filter((f) => f !== 'app.js' && readFileSync(join(dir, 'out', f), 'utf8').includes('H5Fopen'))).toHaveLength(1);
    const { orGate } = (await import(pathToFileURL(out).href)) as { orGate: (b: Uint8Array) => Promise<number[]> };
    const y = await orGate(new Uint8Array(readFileSync(join(ROOT, 'samples', 'or-gate', 'or-gate.onnx'))));
    expect(y.map((v) => Math.round(v))).toEqual([0, 1, 1, 1]);
  }, 120_000);

  it('webpack bundles the browser export without configuration, and the bundle runs', async () => {
    const dir = consumer('modelbridge-webpack-');
    const stats = await new Promise<webpack.Stats>((resolveStats, reject) => {
      webpack(
        { context: dir, entry: './main.js', mode: 'production', target: 'web', optimization: { minimize: false }, output: { path: join(dir, 'out'), filename: 'app.cjs', library: { type: 'commonjs2' } } },
        (err, result) => (err || !result ? reject(err ?? new Error('webpack gave no stats')) : resolveStats(result)),
      );
    });
    expect(stats.hasErrors(), stats.toString({ all: false, errors: true })).toBe(false);
    const code = readFileSync(join(dir, 'out', 'app.cjs'), 'utf8');
    expect(code).toContain('there is no file system here');
    // Nothing resolved to a Node built-in (target web would fail on one; an eval'd Node worker
    // source inside a string is not a module and does not count).
    const modules = (stats.toJson({ all: false, modules: true, nestedModules: true }).modules ?? []).flatMap((m) => [m, ...(m.modules ?? [])]).map((m) => String(m.name ?? ''));
    expect(modules.some((m) => m.includes('dist/browser.js'))).toBe(true);
    expect(modules.filter((m) => /(^|[^\w])node:|^external /.test(m))).toEqual([]);
    // h5wasm (Keras files) is a chunk of its own, loaded with the first Keras file.
    const chunks = readdirSync(join(dir, 'out')).filter((f) => f !== 'app.cjs');
    expect(chunks.filter((f) => readFileSync(join(dir, 'out', f), 'utf8').includes('H5Fopen'))).toHaveLength(1);
    // webpack's runtime for a web target with chunks finds their folder from the script element
    // that loaded it (its automatic publicPath) and keeps its chunk list on `self`, both computed
    // at start; in Node the test gives what a page has.
    const g = globalThis as { document?: unknown; self?: unknown };
    g.document = { currentScript: { tagName: 'SCRIPT', src: pathToFileURL(join(dir, 'out', 'app.cjs')).href } };
    g.self = globalThis;
    let loaded: { orGate: (b: Uint8Array) => Promise<number[]> };
    try {
      loaded = createRequire(import.meta.url)(join(dir, 'out', 'app.cjs')) as typeof loaded;
    } finally {
      delete g.document;
      delete g.self;
    }
    const { orGate } = loaded;
    const y = await orGate(new Uint8Array(readFileSync(join(ROOT, 'samples', 'or-gate', 'or-gate.onnx'))));
    expect(y.map((v) => Math.round(v))).toEqual([0, 1, 1, 1]);
  }, 120_000);
});

/** A consumer project: node_modules/modelbridge linked to this checkout, and main.js using it. */
function consumer(prefix: string): string {
  const dir = tempDir(prefix);
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
  return dir;
}
