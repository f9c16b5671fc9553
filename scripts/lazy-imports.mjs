// An esbuild plugin for the CLI bundle only (scripts/build.mjs): imports marked
//
//   import * as reader from './reader.js'; // lazy in the CLI bundle
//
// are loaded on first use instead of when the importing module loads. Why: every `modelbridge`
// run starts by initialising the bundle's modules, and most of them (the other formats' readers
// and writers, the runtime, protobuf schemas, WebAssembly kernels, node:child_process ...) serve
// other commands and formats. The source stays plain ES modules, so vitest and the library
// bundles import everything eagerly as before; here the line becomes a namespace object whose
// first property read `require()`s the module, which esbuild turns into the lazy initialiser of
// that (same, shared) module in the bundle. Only namespace imports can be made lazy this way (a
// named import would have to be a live binding); the namespace must only be read as `ns.name`.
// A marked line of another shape fails the build rather than silently staying eager.
import { readFile } from 'node:fs/promises';

export const LAZY_MARK = '// lazy in the CLI bundle';
const LINE = /^import \* as ([A-Za-z_$][\w$]*) from '([^']+)'; \/\/ lazy in the CLI bundle\b.*$/gm;

export const lazyImports = {
  name: 'lazy-imports',
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes(LAZY_MARK)) return undefined;
      const contents = text.replace(LINE, (_line, name, spec) => {
        const type = `typeof import(${JSON.stringify(spec)})`;
        // One line, so line numbers (and source maps) stay those of the source.
        return `let ${name}$lazy: ${type} | undefined; const ${name} = new Proxy({} as ${type}, { get: (_target, key) => Reflect.get((${name}$lazy ??= require(${JSON.stringify(spec)}) as ${type}), key) });`;
      });
      const left = contents.split('\n').findIndex((l) => l.includes(LAZY_MARK));
      if (left >= 0) throw new Error(`${args.path}:${left + 1}: "${LAZY_MARK}" marks only lines of the form: import * as name from 'module'; ${LAZY_MARK}`);
      return { contents, loader: 'ts' };
    });
  },
};
