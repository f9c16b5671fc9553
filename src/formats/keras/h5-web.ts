import { UsageError } from '../../core/errors.js';
import { h5Ops, type H5Ops } from './h5-ops.js';
import { h5ReadError, type H5Group, type H5WriteGroup } from './h5-types.js';

/**
 * HDF5 in the browser build (it replaces h5-node.ts there; scripts/browser-build.mjs): h5wasm
 * runs on the calling thread. Its WebAssembly instantiates behind a promise, and nothing may
 * block waiting for it here (a page's main thread cannot), so `loadHdf5()` loads it ahead:
 * `readModel` does when it is given an HDF5 file or a Keras archive, a page before writing one.
 * Once loaded, h5wasm's calls are synchronous, as the Keras reader and writer need.
 *
 * h5wasm's ES build carries its WebAssembly inside its source (no fetch) and keeps its files in
 * memory. The import is dynamic so that its 4 MB load only with the first Keras file: the
 * browser bundle puts it in a file of its own beside dist/browser.js (esbuild's code splitting),
 * which bundlers downstream follow as any dynamic import. (HDF5's own error stack for a bad file
 * goes to the browser's console, which a page's user does not see; the reader's line is the message.)
 */
let ops: H5Ops | undefined;
let loading: Promise<void> | undefined;

export function loadHdf5(): Promise<void> {
  loading ??= (async () => {
    const h5 = (await import('h5wasm')) as unknown as { ready: Promise<unknown> };
    await h5.ready;
    ops = h5Ops(h5);
  })();
  loading.catch(() => (loading = undefined));
  return loading;
}

function loaded(): H5Ops {
  if (!ops) throw new UsageError('HDF5 (Keras .keras and .h5 files) is not loaded in this page yet: await loadHdf5() first (readModel does it for Keras files)');
  return ops;
}

export function readH5(bytes: Uint8Array, limit: number): H5Group {
  const o = loaded();
  try {
    return o.read(bytes, limit).root;
  } catch (error) {
    throw h5ReadError(String(error instanceof Error ? error.message : error));
  }
}

export function writeH5(root: H5WriteGroup): Uint8Array {
  const o = loaded();
  try {
    return o.write(root);
  } catch (error) {
    throw new Error(`HDF5 writing failed: ${String(error instanceof Error ? error.message : error)}`);
  }
}
