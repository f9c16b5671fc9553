import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './cli-helpers.js';
import { peerPython } from './peers.js';
import { makeVenv, pipInstall } from './pip.js';

/**
 * The package as a library user gets it: `npm pack` (which builds the bundles and the type
 * declarations), installed offline into a fresh project that has nothing else, then type-checked,
 * imported, required and run from there.
 */
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const python = peerPython();

function sh(cmd: string, args: readonly string[], cwd: string, options: SpawnSyncOptions = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 26, ...options });
  return { code: r.status ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

let tarball = '';
let files: string[] = [];
let consumer = '';

beforeAll(() => {
  const packDir = tempDir('modelbridge-pack-');
  const packed = sh(NPM, ['pack', '--json', '--pack-destination', packDir], ROOT);
  if (packed.code !== 0) throw new Error(`npm pack failed:\n${packed.stderr}`);
  // npm may print lifecycle-script output before its JSON.
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[\n'))) as { filename: string; files: { path: string }[] }[];
  tarball = join(packDir, info[0]!.filename);
  files = info[0]!.files.map((f) => f.path);

  consumer = tempDir('modelbridge-consumer-');
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  // --offline: the package has no dependencies, so the tarball is all there is to install.
  const installed = sh(NPM, ['install', '--offline', '--no-audit', '--no-fund', tarball], consumer);
  if (installed.code !== 0) throw new Error(`npm install of the tarball failed:\n${installed.stderr}`);
  for (const f of ['or-gate.onnx', 'or-gate.safetensors']) copyFileSync(join(ROOT, 'samples', 'or-gate', f), join(consumer, f));
  // The files a TypeScript user writes: an ES module and a CommonJS one.
  writeFileSync(
    join(consumer, 'esm.ts'),
    [
      "import { loadModel, runModel, inspectModel, convertModel, Tensor, FormatError, VERSION, type Model, type InspectReport, type DType } from 'modelbridge';",
      "const model: Model = loadModel('or-gate.onnx');",
      "const report: InspectReport = inspectModel(model, 'or-gate.onnx');",
      "const dtype: DType = 'float32';",
      "const outputs = runModel(model, { x: Tensor.from(dtype, [1, 2], [1, 1]) });",
      'const y: Tensor | undefined = Object.values(outputs)[0];',
      'const err: FormatError | null = null;',
      "const converted: { files: string[] } = convertModel('or-gate.onnx', 'copy.safetensors', { force: true });",
      'console.log(VERSION, report.ops.join(), y?.toFloat32()[0], err, converted.files.length);',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(consumer, 'cjs.cts'),
    [
      "import mb = require('modelbridge');",
      "const model = mb.loadModel('or-gate.onnx');",
      "const out = mb.runModel(model, { x: mb.Tensor.from('float32', [1, 2], [1, 1]) });",
      'console.log(mb.VERSION, Object.values(out)[0]?.toFloat32()[0]);',
      '',
    ].join('\n'),
  );
  // The same programs in JavaScript, to run.
  writeFileSync(
    join(consumer, 'run.mjs'),
    "import { loadModel, runModel, Tensor, VERSION } from 'modelbridge';\nconst out = runModel(loadModel('or-gate.safetensors'), { x: Tensor.from('float32', [1, 2], [1, 1]) });\nconsole.log(JSON.stringify({ version: VERSION, y: Array.from(Object.values(out)[0].toFloat32()) }));\n",
  );
  writeFileSync(
    join(consumer, 'run.cjs'),
    "const { loadModel, runModel, Tensor, VERSION } = require('modelbridge');\nconst out = runModel(loadModel('or-gate.safetensors'), { x: Tensor.from('float32', [1, 2], [1, 1]) });\nconsole.log(JSON.stringify({ version: VERSION, y: Array.from(Object.values(out)[0].toFloat32()) }));\n",
  );
}, 600_000);

describe('the packed tarball', () => {
  it('ships the bundles, declarations, docs, license and Python helper, and no source or source maps', () => {
    for (const f of ['LICENSE', 'CHANGELOG.md', 'README.md', 'dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts', 'dist/cli.cjs', 'bin/modelbridge.cjs', 'docs/validate-report.md', 'docs/inspect-report.md', 'python/pyproject.toml', 'python/modelbridge_spec.py']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
  });

  it('is the size the README says, within 20%', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const said = /tarball is (\d+) kB/.exec(readme);
    expect(said, 'README: "tarball is N kB"').not.toBeNull();
    const kB = statSync(tarball).size / 1000;
    expect(Math.abs(kB - Number(said![1])) / Number(said![1])).toBeLessThan(0.2);
  });

  it('declares no required dependencies: the bundles carry them, and the declarations import nothing', () => {
    const installed = JSON.parse(readFileSync(join(consumer, 'node_modules', 'modelbridge', 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(installed['dependencies']).toBeUndefined();
    // CommonJS has no import.meta: esbuild would leave `{}.url`, and createRequire(undefined) throws.
    expect(readFileSync(join(consumer, 'node_modules', 'modelbridge', 'dist', 'index.cjs'), 'utf8')).not.toMatch(/import\.meta|import_meta/);
    const dts = readFileSync(join(consumer, 'node_modules', 'modelbridge', 'dist', 'index.d.ts'), 'utf8');
    expect(dts).not.toMatch(/^\s*import\s|^\s*\/\/\/\s*<reference/m);
    expect(dts).not.toMatch(/\bNodeJS\.|\bBuffer\b/);
  });
});

describe('a consumer project', () => {
  // Each: compiler options over `tsc --init`'s defaults (which include `"types": []`, so no
  // @types/node), and the files to check. skipLibCheck false: the declarations themselves are checked.
  const configs: [string, Record<string, unknown>, string[]][] = [
    ['tsc --init defaults', {}, ['esm.ts', 'cjs.cts']],
    ['tsc --init, skipLibCheck false', { skipLibCheck: false }, ['esm.ts', 'cjs.cts']],
    ['node16, strict', { module: 'node16', moduleResolution: 'node16', strict: true, skipLibCheck: false }, ['esm.ts', 'cjs.cts']],
    ['node16, not strict', { module: 'node16', moduleResolution: 'node16', strict: false, exactOptionalPropertyTypes: false, skipLibCheck: false }, ['esm.ts', 'cjs.cts']],
    ['bundler, strict', { module: 'esnext', moduleResolution: 'bundler', strict: true, skipLibCheck: false }, ['esm.ts']],
    ['bundler, not strict', { module: 'preserve', moduleResolution: 'bundler', strict: false, exactOptionalPropertyTypes: false, skipLibCheck: false }, ['esm.ts']],
    ['with @types/node of the repo', { types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')], skipLibCheck: false }, ['esm.ts', 'cjs.cts']],
  ];

  it.each(configs)('type-checks with zero errors: %s', (name, options, checked) => {
    if (!existsSync(join(consumer, 'tsconfig.json'))) {
      const init = sh(TSC, ['--init'], consumer);
      expect(init.code, init.stdout + init.stderr).toBe(0);
    }
    const file = `tsconfig.${name.replace(/[^a-z0-9]+/gi, '-')}.json`;
    writeFileSync(join(consumer, file), JSON.stringify({ extends: './tsconfig.json', compilerOptions: { noEmit: true, ...options }, files: checked }));
    const r = sh(TSC, ['-p', file], consumer);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('imports (ESM) and requires (CommonJS) the package and runs the OR gate with both', () => {
    const esm = sh(process.execPath, ['run.mjs'], consumer);
    expect(esm.stderr).toBe('');
    const cjs = sh(process.execPath, ['run.cjs'], consumer);
    expect(cjs.stderr).toBe('');
    // Without require(esm) (Node 20.0-20.18 have none): the "require" condition's CommonJS bundle.
    const oldNode = sh(process.execPath, ['--no-experimental-require-module', 'run.cjs'], consumer);
    expect(oldNode.stderr).toBe('');
    const a = JSON.parse(esm.stdout) as { version: string; y: number[] };
    expect(a.version).toBe(pkg.version);
    expect(a.y).toHaveLength(1);
    expect(a.y[0]).toBeGreaterThan(0.8);
    expect(JSON.parse(cjs.stdout)).toEqual(a);
    expect(JSON.parse(oldNode.stdout)).toEqual(a);
  });

  it('npx modelbridge --version prints the package version, not the project version', () => {
    const r = sh('npx', ['--offline', 'modelbridge', '--version'], consumer);
    expect(r.stdout.trim()).toBe(pkg.version);
    expect(pkg.version).not.toBe('1.0.0');
  });

  it('the installed CLI converts and runs from the consumer folder', () => {
    const bin = join(consumer, 'node_modules', '.bin', 'modelbridge');
    const conv = sh(bin, ['convert', 'or-gate.onnx', 'cli-copy.safetensors', '--force'], consumer);
    expect(conv.stderr).toBe('');
    expect(conv.code).toBe(0);
    const run = sh(bin, ['run', 'cli-copy.safetensors', '--input', '[[1,1]]', '--json'], consumer);
    expect(run.code).toBe(0);
    const y = (JSON.parse(run.stdout) as { outputs: Record<string, { data: number[] }> }).outputs;
    expect(Object.values(y)[0]!.data[0]).toBeGreaterThan(0.8);
  });
});

describe.skipIf(!python)('the Python helper from the npm package folder', () => {
  it('pip installs from node_modules/modelbridge/python and imports', () => {
    const venvPython = makeVenv(python!, tempDir('modelbridge-pip-npm-'));
    const installed = pipInstall(venvPython, join(consumer, 'node_modules', 'modelbridge', 'python'));
    expect(installed.code, installed.output).toBe(0);
    const r = sh(venvPython, ['-c', 'import modelbridge_spec as ms; print(ms.__file__)'], tempDir());
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/venv\/lib\/python[\d.]+\/site-packages\/modelbridge_spec\.py/);
  }, 300_000);
});

describe('the API reference', () => {
  // Generated from the TSDoc as `npm run docs:api` does (into a temporary folder here: the
  // committed docs/api is regenerated by hand, and another change's new export must not fail this).
  it('api-documenter writes a page for every name the declarations export', () => {
    const dts = readFileSync(join(ROOT, 'dist', 'index.d.ts'), 'utf8');
    const exported = new Set<string>();
    for (const m of dts.matchAll(/^export (?:declare )?(?:abstract )?(?:class|function|const|interface|type|enum) ([A-Za-z_$][\w$]*)/gm)) exported.add(m[1]!);
    for (const m of dts.matchAll(/^export \{([^}]*)\}/gm)) for (const n of m[1]!.split(',')) if (n.trim()) exported.add(n.trim().split(/\s+as\s+/).pop()!);
    expect(exported.size).toBeGreaterThan(30);
    const out = tempDir('modelbridge-api-docs-');
    const r = sh(join(ROOT, 'node_modules', '.bin', 'api-documenter'), ['markdown', '--input-folder', join(ROOT, 'dist', '.api'), '--output-folder', out], ROOT);
    expect(r.code, r.stderr).toBe(0);
    const pages = new Set(readdirSync(out));
    expect([...exported].filter((n) => !pages.has(`modelbridge.${n.toLowerCase()}.md`))).toEqual([]);
    // The package's own summary and the committed reference's entry point.
    expect(readFileSync(join(out, 'modelbridge.md'), 'utf8')).toMatch(/modelbridge as a library: read any supported model/);
    expect(existsSync(join(ROOT, 'docs', 'api', 'index.md'))).toBe(true);
  });
});
