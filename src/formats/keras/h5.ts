/**
 * HDF5 through h5wasm (the HDF5 C library compiled to WebAssembly), for Keras's weight files.
 * No hand-written HDF5 parser: the format has B-trees, heaps, filters and several superblock
 * versions, and the reference library reads all of them. In Node it runs on a worker thread
 * (h5-node.ts); the browser build swaps that file for h5-web.ts, which runs it on the calling
 * thread once `loadHdf5()` has loaded it. Both run the same tree code (h5-ops.ts).
 */
export * from './h5-types.js';
export { loadHdf5, readH5, writeH5 } from './h5-node.js';
