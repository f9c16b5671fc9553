/**
 * float32 GEMM in WebAssembly SIMD128 (gemm.wat, assembled into gemm-bytes.ts by
 * scripts/build-wasm.mjs), on one thread or split over a pool of worker threads that share the
 * module's memory (pool.ts). The module is compiled synchronously on first use; where
 * WebAssembly, its SIMD or shared memory is missing, `wasmSgemmAvailable()` is false and
 * `wasmSgemm` computes the same product in plain JS (float32 rounding of a float64 sum), so
 * callers never need a second path.
 *
 * Operands live in one shared memory managed here: constants (a convolution's weights, a
 * MatMul's weight) are packed into it once and stay (freed when their source array is garbage
 * collected); activations are copied in for a call and their space is reused by the next one.
 */
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { WASM_PAGE } from '../../core/wasm/module.js';
import { GEMM_RELAXED_WASM_BASE64, GEMM_WASM_BASE64 } from './gemm-bytes.js';
import { GemmPool, MAX_WORKERS, PoolKind } from './pool.js';

export { PoolKind } from './pool.js';
import { fromBase64 } from '../../core/bytes.js';
import { setResidentAllocator } from '../arena.js';

interface GemmExports {
  gemm(job: number): void;
  pack_a(a: number, lda: number, m: number, k: number, dst: number): void;
  pack_b(b: number, ldb: number, trans: number, j0: number, j1: number, k: number, dst: number): void;
  maxpool2d(desc: number): void;
  gelu(x: number, out: number, n: number, table: number, d: number, one: number, scale: number, scaled: number): void;
  softmax(x: number, out: number, rows: number, len: number, ld: number, tmp: number, table: number): void;
  winograd_in(desc: number): void;
  winograd_out(desc: number): void;
  winograd_all(desc: number): void;
  layernorm(x: number, out: number, rows: number, len: number, scale: number, bias: number, eps: number): void;
  scale_add(x: number, rows: number, len: number, ld: number, s: number, mask: number, mrows: number): void;
}

interface SharedMemory {
  readonly buffer: SharedArrayBuffer;
  grow(pages: number): number;
}

interface WasmThreadsApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => SharedMemory;
}

/** 2 GiB: pointers stay below 2^31, so they pass through i32 parameters unchanged. */
const MAX_PAGES = 32768;
const MAX_BYTES = MAX_PAGES * WASM_PAGE;
const ALIGN = 64;

interface State {
  readonly exports: GemmExports;
  readonly memory: SharedMemory;
  /** The compiled module, which the pool's workers instantiate on the same memory. */
  readonly module: object;
  readonly kernel: GemmKernel;
  f32: Float32Array;
  i32: Int32Array;
  readonly heap: Heap;
  pool: GemmPool | null | undefined;
}

let state: State | null | undefined;

/**
 * Which form of the module runs products: 'relaxed-simd' (the micro-kernel's multiply-adds are
 * f32x4.relaxed_madd, one FMA instruction each on CPUs that have FMA), 'simd128' (a mul and an
 * add), or 'js' (no WebAssembly SIMD here).
 */
export type GemmKernel = 'relaxed-simd' | 'simd128' | 'js';

/**
 * The relaxed-SIMD module's bytes when this engine accepts them. Node 22+ (V8 11.4+) ships relaxed
 * SIMD; Node 20's V8 has it behind --experimental-wasm-relaxed-simd, a flag that only gates what
 * the wasm validator accepts, so it is turned on here, before the module is compiled (the
 * workers compile theirs later in the same process). The FMA doubles the kernel's multiply-adds
 * per cycle; its sums round once per step instead of twice, well within float32 GEMM tolerance.
 * MODELBRIDGE_GEMM=simd128 keeps the mul-and-add kernel (results that repeat across CPUs with and
 * without FMA).
 */
function relaxedBytes(api: WasmThreadsApi): Uint8Array | null {
  if (process.env.MODELBRIDGE_GEMM === 'simd128') return null;
  const bytes = fromBase64(GEMM_RELAXED_WASM_BASE64);
  try {
    if (api.validate(bytes)) return bytes;
    setFlagsFromString('--experimental-wasm-relaxed-simd');
    return api.validate(bytes) ? bytes : null;
  } catch {
    return null;
  }
}

function load(): State | null {
  if (state !== undefined) return state;
  state = null;
  try {
    const api = (globalThis as unknown as { WebAssembly?: WasmThreadsApi }).WebAssembly;
    if (!api) return null;
    const memory = new api.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
    const relaxed = relaxedBytes(api);
    let bytes = relaxed ?? fromBase64(GEMM_WASM_BASE64);
    let module: object;
    try {
      module = new api.Module(bytes);
    } catch (error) {
      if (!relaxed) throw error;
      bytes = fromBase64(GEMM_WASM_BASE64);
      module = new api.Module(bytes);
    }
    const exports = new api.Instance(module, { env: { memory } }).exports as GemmExports;
    const s: State = {
      exports,
      memory,
      module,
      kernel: bytes === relaxed ? 'relaxed-simd' : 'simd128',
      f32: new Float32Array(memory.buffer),
      i32: new Int32Array(memory.buffer),
      heap: undefined as unknown as Heap,
      pool: undefined,
    };
    (s as { heap: Heap }).heap = new Heap(s);
    buffers.add(memory.buffer);
    state = s;
  } catch {
    state = null; // no WebAssembly, no SIMD128 or no shared memory: the JS path serves
  }
  return state;
}

/** True when the WebAssembly SIMD kernel can run here (compiles the module on first call). */
export function wasmSgemmAvailable(): boolean {
  return load() !== null;
}

/** The form of the kernel products run in here (compiles the module on first call). */
export function gemmKernel(): GemmKernel {
  return load()?.kernel ?? 'js';
}

// ---------------------------------------------------------------------------------------------
// Threads

/** The thread count startIntraOpThreads chose, which then becomes the default. */
let started: number | undefined;

/**
 * The default intra-op thread count: what startIntraOpThreads started, else the machine's cores,
 * at most 8 (beyond that the products of typical models are too small to share). The browser
 * build reports one core (its shim of node:os): a page starts its threads explicitly.
 */
export function defaultThreads(): number {
  return started ?? Math.max(1, Math.min(8, availableParallelism()));
}

let threads = defaultThreads();

/** Sets the number of threads products may use (1: the calling thread only) and returns the previous setting. */
export function setIntraOpThreads(count: number): number {
  const previous = threads;
  threads = Math.max(1, Math.min(MAX_WORKERS + 1, Math.floor(count)));
  return previous;
}

export function intraOpThreads(): number {
  return threads;
}

/**
 * Below this many multiply-adds a product stays on one thread: waking the workers and waiting
 * for them costs tens of microseconds, what ~0.5 M multiply-adds take.
 */
const THREAD_MIN_WORK = 1 << 19;

/**
 * Below this many elements (times a kernel's cost per element, in the callers) a row-wise kernel
 * (MaxPool, GELU, Softmax) stays on one thread: its share would take less than the ~10 µs a
 * worker needs to wake up and report back.
 */
const SPREAD_MIN_ELEMENTS = 16384;

/** How many parts a row-wise kernel over `elements` elements is cut into, and the pool that runs them (null: one part, here). */
function spreadFor(s: State, elements: number): { count: number; pool: GemmPool | null } {
  if (threads <= 1 || elements < SPREAD_MIN_ELEMENTS) return { count: 1, pool: null };
  const pool = poolFor(s, threads);
  return pool ? { count: Math.min(threads, pool.size + 1), pool } : { count: 1, pool: null };
}

/**
 * Runs `kind` on every descriptor at once: the first here (through `own`), the others on the
 * pool's workers. A failed pool is closed (later calls run on this thread) and the error thrown.
 */
function spread(s: State, pool: GemmPool | null, kind: PoolKind, descs: readonly number[], own: (desc: number) => void): void {
  if (!pool || descs.length === 1) {
    for (const d of descs) own(d);
    return;
  }
  try {
    pool.run(descs.slice(1), descs[0]!, own, kind);
  } catch (error) {
    pool.close();
    s.pool = null;
    throw error;
  }
}

/**
 * The pool for `threads`, started (or grown) on first need; null when workers cannot run here,
 * or while they are still starting (Web Workers start between tasks: this call runs on one thread).
 */
function poolFor(s: State, count: number): GemmPool | null {
  const wanted = count - 1;
  if (wanted <= 0) return null;
  if (s.pool === null) return null;
  if (s.pool && !s.pool.broken && s.pool.size >= wanted) return s.pool.ready ? s.pool : null;
  s.pool?.close();
  try {
    const pool = new GemmPool(s.module, s.memory, wanted);
    s.pool = pool.broken ? null : pool;
  } catch {
    s.pool = null; // no worker threads here (a page that is not cross-origin isolated): one thread serves
  }
  return s.pool?.ready ? s.pool : null;
}

/**
 * Starts the threads for `count`-way products ahead of use and makes `count` the default; resolves
 * with the threads products will use: `count`, or 1 where no worker can run (no WebAssembly SIMD,
 * no shared memory, a page that is not cross-origin isolated). A page must call this (its Web
 * Workers start only after it returns to its event loop); in Node the pool starts on first need.
 */
export async function startIntraOpThreads(count: number): Promise<number> {
  const wanted = Math.max(1, Math.min(MAX_WORKERS + 1, Math.floor(count)));
  const s = load();
  if (!s || wanted === 1) {
    started = 1;
    return 1;
  }
  if (s.pool === null) s.pool = undefined; // a page may call again after the first attempt failed
  poolFor(s, wanted);
  const pool = s.pool;
  const ready = pool ? await pool.whenReady() : false;
  if (!ready) {
    pool?.close();
    s.pool = null;
  }
  started = ready && pool ? pool.size + 1 : 1;
  return started;
}

/** The intra-op pool's workers (0: none started) and how many calls ran on them: the browser page shows whether its threads work. */
export function threadPoolStats(): { workers: number; runs: number } {
  const pool = state?.pool;
  return pool && !pool.broken ? { workers: pool.size, runs: pool.runs } : { workers: 0, runs: 0 };
}

// ---------------------------------------------------------------------------------------------
// Memory

/**
 * First-fit allocator over the module's memory, growing it when nothing fits. Blocks are
 * multiples of 64 bytes (cache lines); [0, 64) is never handed out, so 0 means "none".
 */
class Heap {
  /** Free blocks, sorted by address, never adjacent (merged). */
  private readonly free: { start: number; size: number }[] = [];
  private readonly sizes = new Map<number, number>();
  private end = ALIGN;

  constructor(private readonly s: State) {
    this.free.push({ start: ALIGN, size: s.memory.buffer.byteLength - ALIGN });
    this.end = s.memory.buffer.byteLength;
  }

  /** A block of at least `bytes`, or 0 when the memory cannot grow that far. */
  alloc(bytes: number): number {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    for (let i = 0; i < this.free.length; i++) {
      const block = this.free[i]!;
      if (block.size < size) continue;
      const start = block.start;
      if (block.size === size) this.free.splice(i, 1);
      else {
        block.start += size;
        block.size -= size;
      }
      this.sizes.set(start, size);
      return start;
    }
    const last = this.free.at(-1);
    const tail = last && last.start + last.size === this.end ? last.size : 0;
    const pages = Math.ceil((size - tail) / WASM_PAGE);
    if (this.end + pages * WASM_PAGE > MAX_BYTES) return 0;
    try {
      this.s.memory.grow(pages);
    } catch {
      return 0;
    }
    this.s.f32 = new Float32Array(this.s.memory.buffer);
    this.s.i32 = new Int32Array(this.s.memory.buffer);
    buffers.add(this.s.memory.buffer);
    const added = pages * WASM_PAGE;
    if (tail) last!.size += added;
    else this.free.push({ start: this.end, size: added });
    this.end += added;
    return this.alloc(bytes);
  }

  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) return;
    this.sizes.delete(ptr);
    let i = 0;
    while (i < this.free.length && this.free[i]!.start < ptr) i++;
    this.free.splice(i, 0, { start: ptr, size });
    const next = this.free[i + 1];
    if (next && ptr + size === next.start) {
      this.free[i]!.size += next.size;
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev.start + prev.size === ptr) {
      prev.size += this.free[i]!.size;
      this.free.splice(i, 1);
    }
  }
}

/** Frees a packed constant's block (or a resident array's) once nothing references the packed handle (or the array). */
const registry = new FinalizationRegistry<number>((ptr) => state?.heap.release(ptr));

/**
 * Every SharedArrayBuffer the module's memory has been seen as (a grown shared memory is a new,
 * longer buffer over the same bytes; views on the old one stay valid), to tell a resident array.
 */
const buffers = new WeakSet<ArrayBufferLike>();

/** The byte address of a Float32Array that lives in the module's memory (a resident array or a view of one), else 0. */
export function residentPtr(data: unknown): number {
  return data instanceof Float32Array && buffers.has(data.buffer) ? data.byteOffset : 0;
}

/**
 * A Float32Array of `count` elements in the module's memory, 64 bytes of slack after it (the
 * kernels' vector loads may pass a row's end); its block goes back to the heap when the array is
 * collected. Arenas keep and reuse them (arena.ts), so a session's runs reuse the same blocks.
 */
function makeResident(count: number): Float32Array | null {
  const s = load();
  if (!s || count <= 0 || count * 4 > MAX_BYTES / 4) return null;
  const ptr = s.heap.alloc(count * 4 + 64);
  if (!ptr) return null;
  const view = new Float32Array(s.memory.buffer, ptr, count);
  registry.register(view, ptr);
  return view;
}
setResidentAllocator(makeResident);

/** A constant matrix packed once into the module's memory (see pack_a / pack_b in gemm.wat). */
export interface PackedMatrix {
  readonly ptr: number;
  /** Rows of A (side a) or columns of B (side b). */
  readonly count: number;
  readonly k: number;
  readonly side: 'a' | 'b';
}

const packedCache = new WeakMap<object, Map<string, PackedMatrix>>();

/**
 * The packed form of a constant, made on first request and then shared (keyed by the object
 * that owns the constant, a session's Value, and by `key`, which names the layout and slice).
 * Null where the WebAssembly kernel does not run.
 */
export function packedConstant(owner: object, key: string, make: () => PackedMatrix | null): PackedMatrix | null {
  let byKey = packedCache.get(owner);
  const found = byKey?.get(key);
  if (found) return found;
  const packed = make();
  if (!packed) return null;
  if (!byKey) packedCache.set(owner, (byKey = new Map()));
  byKey.set(key, packed);
  return packed;
}

/** A[m,k] (row-major from `offset`) packed as the left operand. */
export function packA(data: Float32Array, offset: number, m: number, k: number): PackedMatrix | null {
  return packWith(m, k, 'a', data.subarray(offset, offset + m * k), (s, src, dst) => s.exports.pack_a(src, k, m, k, dst), Math.ceil(m / 4) * 4);
}

/** B packed as the right operand: B[k,n] row-major, or B given as [n,k] when `transposed`. */
export function packB(data: Float32Array, offset: number, n: number, k: number, transposed: boolean): PackedMatrix | null {
  return packWith(n, k, 'b', data.subarray(offset, offset + n * k), (s, src, dst) => s.exports.pack_b(src, transposed ? k : n, transposed ? 1 : 0, 0, n, k, dst), Math.ceil(n / 8) * 8);
}

/**
 * `count` matrices A[m,k], one after another in `data`, each packed as the left operand, into
 * one block: matrix i's packed form at ptr + i * stride bytes (a batched job's strideA).
 */
export function packAStack(data: Float32Array, count: number, m: number, k: number): (PackedMatrix & { readonly stride: number }) | null {
  const stride = Math.ceil(m / 4) * 4 * k * 4;
  const s = load();
  if (!s || count <= 0 || m <= 0 || k <= 0 || data.length !== count * m * k) return null;
  const dst = s.heap.alloc(stride * count);
  if (!dst) return null;
  const tmp = s.heap.alloc(data.length * 4);
  if (!tmp) {
    s.heap.release(dst);
    return null;
  }
  s.f32.set(data, tmp >> 2);
  for (let i = 0; i < count; i++) s.exports.pack_a(tmp + i * m * k * 4, k, m, k, dst + i * stride);
  s.heap.release(tmp);
  const packed = { ptr: dst, count: m, k, side: 'a' as const, stride };
  registry.register(packed, dst);
  return packed;
}

function packWith(count: number, k: number, side: 'a' | 'b', src: Float32Array, pack: (s: State, src: number, dst: number) => void, padded: number): PackedMatrix | null {
  const s = load();
  if (!s || count <= 0 || k <= 0) return null;
  const dst = s.heap.alloc(padded * k * 4);
  if (!dst) return null;
  const tmp = s.heap.alloc(src.length * 4);
  if (!tmp) {
    s.heap.release(dst);
    return null;
  }
  s.f32.set(src, tmp >> 2);
  pack(s, tmp, dst);
  s.heap.release(tmp);
  const packed: PackedMatrix = { ptr: dst, count, k, side };
  registry.register(packed, dst);
  return packed;
}

// ---------------------------------------------------------------------------------------------
// Calls

/** The fields of a job descriptor (see gemm.wat); pointers are byte addresses, strides bytes. */
export interface Job {
  m: number;
  n: number;
  k: number;
  /** 0: row-major with row stride lda; 1: packed. */
  aMode: 0 | 1;
  a: number;
  lda: number;
  /** 0: [K,N]; 1: [N,K]; 2: packed; 3: convolution descriptor at b. */
  bMode: 0 | 1 | 2 | 3;
  b: number;
  ldb: number;
  c: number;
  ldc: number;
  /** 0: none; 1: one value per row of C; 2: one per column. */
  biasMode: 0 | 1 | 2;
  bias: number;
  /** Clamp C to [lo, hi] after the bias (Relu: [0, Infinity]). */
  clamp?: readonly [number, number];
  batch: number;
  strideA: number;
  strideB: number;
  strideC: number;
  /** An array laid out as C, added after the bias and before the clamp (0 or absent: none). */
  residual?: number;
}

/** What a thread's block of packed B columns may take of its core's L2 (2 MiB on this project's x86_64 VMs, 1-2 MiB on most CPUs). */
const B_BLOCK_BYTES = 512 * 1024;
/** Blocking B pays only while all of packed A stays in L2 across the blocks. */
const A_RESIDENT_BYTES = 1024 * 1024;

/**
 * How many columns of B a thread packs and sweeps at a time (gemm.wat's nc; 0: all of them):
 * a block of packed B small enough to stay in L2 from its packing to its last use, where B
 * would not fit whole and A would stay put (ResNet's early convolutions: 3136 columns x 576
 * is 7 MB of packed B, their weights 147 KB). Where A is larger (the late stages' weights,
 * up to 9 MB), one pass over all of B is cheaper than one over A per block.
 */
function columnBlock(job: Job): number {
  if (job.bMode === 2) return 0;
  if (Math.ceil(job.m / 4) * 4 * job.k * 4 > A_RESIDENT_BYTES) return 0;
  return Math.max(32, Math.floor(B_BLOCK_BYTES / (job.k * 4) / 8) * 8);
}

const JOB_BYTES = 128;

/**
 * One use of the module: operands copied in with `put`, space taken with `alloc`, jobs run with
 * `run`, results copied out with `get`; `end` gives the transient space back.
 */
export class GemmCall {
  private readonly blocks: number[] = [];
  private constructor(private readonly s: State) {}

  /** A call, or null where the WebAssembly kernel does not run. */
  static begin(): GemmCall | null {
    const s = load();
    return s ? new GemmCall(s) : null;
  }

  /** Space for `bytes`; 0 when memory is exhausted (the caller falls back). */
  alloc(bytes: number): number {
    const ptr = this.s.heap.alloc(bytes);
    if (ptr) this.blocks.push(ptr);
    return ptr;
  }

  /** Copies `src` in (unless it is resident already: its own address then); returns its address (0 when memory is exhausted). */
  put(src: Float32Array): number {
    const resident = residentPtr(src);
    if (resident) return resident;
    const ptr = this.alloc(src.length * 4 + 32);
    if (ptr) this.s.f32.set(src, ptr >> 2);
    return ptr;
  }

  putInts(values: readonly number[]): number {
    const ptr = this.alloc(values.length * 4);
    if (ptr) this.s.i32.set(values, ptr >> 2);
    return ptr;
  }

  /** A[m,k] (row-major from `offset`) packed for this call only (a weight that is not a constant); 0 when memory is exhausted. */
  packA(data: Float32Array, offset: number, m: number, k: number): number {
    const src = this.put(data.subarray(offset, offset + m * k));
    const dst = src && this.alloc(Math.ceil(m / 4) * 4 * k * 4);
    if (dst) this.s.exports.pack_a(src, k, m, k, dst);
    return dst;
  }

  /** Copies `length` floats from `ptr` to out[outOffset..] (nothing to do when that is where they are). */
  get(ptr: number, out: Float32Array, outOffset: number, length: number): void {
    const resident = residentPtr(out);
    if (resident && resident + outOffset * 4 === ptr) return;
    out.set(this.s.f32.subarray(ptr >> 2, (ptr >> 2) + length), outOffset);
  }

  /**
   * Runs gelu (gemm.wat) over n floats at x into out, the floats cut into bands (multiples of 4,
   * so only the last band's vector steps pass its end, into the slack) over the intra-op threads.
   */
  gelu(x: number, out: number, n: number, table: number, d: number, one: number, scale: number | undefined): boolean {
    const { count, pool } = spreadFor(this.s, n);
    const descs: number[] = [];
    for (const [i0, i1] of bands(n, count, 4)) {
      const desc = this.alloc(32);
      if (!desc) return false;
      descs.push(desc);
      this.s.i32.set([x + i0 * 4, out + i0 * 4, i1 - i0, table], desc >> 2);
      this.s.f32.set([d, one, scale ?? 1], (desc >> 2) + 4);
      this.s.i32[(desc >> 2) + 7] = scale === undefined ? 0 : 1;
    }
    spread(this.s, pool, PoolKind.Gelu, descs, (desc) => {
      const i32 = this.s.i32;
      const f32 = this.s.f32;
      const at = desc >> 2;
      this.s.exports.gelu(i32[at]!, i32[at + 1]!, i32[at + 2]!, i32[at + 3]!, f32[at + 4]!, f32[at + 5]!, f32[at + 6]!, i32[at + 7]!);
    });
    return true;
  }

  /**
   * Runs softmax (gemm.wat) over rows at x into out, the rows cut into bands over the intra-op
   * threads (each with its own row of doubles at tmp + band × tmpBytes). False when memory ran out.
   */
  softmax(x: number, out: number, rows: number, len: number, ld: number, tmp: number, tmpBytes: number, table: number): boolean {
    const { count, pool } = spreadFor(this.s, rows * len);
    const parts = bands(rows, count, 1);
    const descs: number[] = [];
    for (const [t, [r0, r1]] of parts.entries()) {
      const desc = this.alloc(32);
      if (!desc) return false;
      descs.push(desc);
      this.s.i32.set([x + r0 * ld * 4, out + r0 * ld * 4, r1 - r0, len, ld, tmp + t * tmpBytes, table], desc >> 2);
    }
    spread(this.s, pool, PoolKind.Softmax, descs, (desc) => {
      const i32 = this.s.i32;
      const at = desc >> 2;
      this.s.exports.softmax(i32[at]!, i32[at + 1]!, i32[at + 2]!, i32[at + 3]!, i32[at + 4]!, i32[at + 5]!, i32[at + 6]!);
    });
    return true;
  }

  /** Runs layernorm (gemm.wat) over rows at x into out, the rows cut into bands over the intra-op threads. False when memory ran out. */
  layerNorm(x: number, out: number, rows: number, len: number, scale: number, bias: number, eps: number): boolean {
    const { count, pool } = spreadFor(this.s, rows * len);
    const descs: number[] = [];
    for (const [r0, r1] of bands(rows, count, 1)) {
      const desc = this.alloc(32);
      if (!desc) return false;
      descs.push(desc);
      this.s.i32.set([x + r0 * len * 4, out + r0 * len * 4, r1 - r0, len, scale, bias], desc >> 2);
      new Float64Array(this.s.memory.buffer, desc, 4)[3] = eps;
    }
    spread(this.s, pool, PoolKind.LayerNorm, descs, (desc) => {
      const i32 = this.s.i32;
      const at = desc >> 2;
      this.s.exports.layernorm(i32[at]!, i32[at + 1]!, i32[at + 2]!, i32[at + 3]!, i32[at + 4]!, i32[at + 5]!, new Float64Array(this.s.memory.buffer, desc, 4)[3]!);
    });
    return true;
  }

  /** How many bands a row-wise kernel over `elements` elements is cut into here (1 on one thread). */
  spreadCount(elements: number): number {
    return spreadFor(this.s, elements).count;
  }

  /** Writes float32 values at the address `ptr` (a descriptor's f32 words). */
  setFloats(ptr: number, values: readonly number[]): void {
    this.s.f32.set(values, ptr >> 2);
  }

  /** Copies `src` to the address `ptr` (taken with alloc). */
  set(ptr: number, src: Float32Array): void {
    this.s.f32.set(src, ptr >> 2);
  }

  /**
   * Runs `kind`'s export (winograd_in, winograd_out, winograd_all: they take a descriptor address) on each
   * descriptor, at once over the intra-op threads.
   */
  runEach(kind: PoolKind, descs: readonly number[]): void {
    const pool = descs.length > 1 ? poolFor(this.s, threads) : null;
    const e = this.s.exports;
    const run = kind === PoolKind.WinogradIn ? e.winograd_in : kind === PoolKind.WinogradOut ? e.winograd_out : kind === PoolKind.WinogradAll ? e.winograd_all : null;
    if (!run) throw new Error(`runEach: no export for pool kind ${kind}`);
    spread(this.s, pool, kind, descs, (desc) => run(desc));
  }

  /** Runs maxpool2d (gemm.wat) on each descriptor, at once over the intra-op threads. */
  maxPool2d(descs: readonly number[]): void {
    const pool = descs.length > 1 ? poolFor(this.s, threads) : null;
    spread(this.s, pool, PoolKind.MaxPool2d, descs, (desc) => this.s.exports.maxpool2d(desc));
  }

  end(): void {
    for (const ptr of this.blocks) this.s.heap.release(ptr);
    this.blocks.length = 0;
  }

  /**
   * The descriptor of a whole job for one thread (no split), to run inside another export
   * (winograd_all); 0 when memory ran out. Takes pre-packed A and B only.
   */
  jobDescriptor(job: Job): number {
    if (job.aMode !== 1 || job.bMode !== 2) throw new Error('jobDescriptor: pre-packed operands only');
    const area = this.alloc(JOB_BYTES + 256 + 64);
    if (!area) return 0;
    const at = area >> 2;
    this.s.i32.set([job.m, job.n, job.k, job.aMode, job.a, job.lda, job.bMode, job.b, job.ldb, job.c, job.ldc, job.biasMode, job.bias, job.clamp ? 1 : 0], at);
    this.s.f32[at + 14] = job.clamp ? job.clamp[0] : 0;
    this.s.f32[at + 15] = job.clamp ? job.clamp[1] : 0;
    this.s.i32.set([0, job.m, 0, job.n, area + JOB_BYTES, 0, job.batch, job.strideA, job.strideB, job.strideC, job.residual ?? 0, 0], at + 16);
    return area;
  }

  /** Runs a job, split over the intra-op threads when it is large enough. False when memory ran out. */
  run(job: Job): boolean {
    const work = job.m * job.n * job.k * job.batch;
    const wanted = work >= THREAD_MIN_WORK ? threads : 1;
    const pool = wanted > 1 ? poolFor(this.s, wanted) : null;
    const parts = split(job, pool ? Math.min(wanted, pool.size + 1) : 1);
    const nc = columnBlock(job);
    const ptrs: number[] = [];
    for (const part of parts) {
      const rows = part.i1 - part.i0;
      const cols = nc ? Math.min(nc, part.j1 - part.j0) : part.j1 - part.j0;
      const workBytes = 256 + (job.aMode === 0 ? Math.ceil(rows / 4) * 4 * job.k * 4 : 0) + (job.bMode === 2 ? 0 : Math.ceil(cols / 8) * 8 * job.k * 4) + 64;
      const area = this.alloc(JOB_BYTES + workBytes);
      if (!area) return false;
      ptrs.push(area);
    }
    // the memory may have grown while allocating: write the descriptors through fresh views
    const i32 = this.s.i32;
    const f32 = this.s.f32;
    parts.forEach((part, t) => {
      const at = ptrs[t]! >> 2;
      i32.set([job.m, job.n, job.k, job.aMode, job.a, job.lda, job.bMode, job.b, job.ldb, job.c, job.ldc, job.biasMode, job.bias, job.clamp ? 1 : 0], at);
      f32[at + 14] = job.clamp ? job.clamp[0] : 0;
      f32[at + 15] = job.clamp ? job.clamp[1] : 0;
      i32.set([part.i0, part.i1, part.j0, part.j1, ptrs[t]! + JOB_BYTES, part.b0, part.b1, job.strideA, job.strideB, job.strideC, job.residual ?? 0, nc], at + 16);
    });
    if (parts.length === 1 || !pool) {
      this.s.exports.gemm(ptrs[0]!);
      return true;
    }
    try {
      pool.run(ptrs.slice(1), ptrs[0]!, (ptr) => this.s.exports.gemm(ptr));
    } catch (error) {
      pool.close();
      this.s.pool = null; // the workers are gone; later products run on this thread
      throw error;
    }
    return true;
  }
}

interface Part {
  i0: number;
  i1: number;
  j0: number;
  j1: number;
  b0: number;
  b1: number;
}

/**
 * What packing one float costs, in multiply-adds of the micro-kernel (a 4x8 tile does 32 in
 * about 4.5 cycles; a transposing pack moves a float in about one, gathering a convolution's
 * input with its padding checks in about three): used only to choose where a job is cut.
 */
const PACK_COST = 6;
const GATHER_COST = 20;

/**
 * Cuts a job into `count` parts of about equal work: whole images of a batch when they divide
 * evenly enough, else bands of C's columns (multiples of 8) or of its rows (multiples of 4),
 * whichever leaves the busiest thread the least to do. A packed operand is shared as it is; the
 * other one is packed by each thread for its own band, and in full by every thread when the cut
 * goes along the packed one: so a cut across a weight-packed convolution's rows costs each
 * thread the whole image gather, and a cut across its 49 columns (ResNet's last stage: bands of
 * 32 and 17, in panels of 8) leaves one thread twice the other's work. The cost model counts
 * both.
 */
function split(job: Job, count: number): Part[] {
  const whole = { i0: 0, i1: job.m, j0: 0, j1: job.n, b0: 0, b1: job.batch };
  if (count <= 1) return [whole];
  if (job.batch >= count && (job.batch % count === 0 || job.batch >= 4 * count)) {
    return bands(job.batch, count, 1).map(([b0, b1]) => ({ ...whole, b0, b1 }));
  }
  const packA = job.aMode === 1 ? 0 : PACK_COST;
  const packB = job.bMode === 2 ? 0 : job.bMode === 3 ? GATHER_COST : PACK_COST;
  const pad = (x: number, unit: number) => Math.ceil(x / unit) * unit;
  // the busiest thread's work (multiply-adds and packing) over the whole batch
  const cost = (parts: [number, number][], rows: boolean): number => {
    let worst = 0;
    for (const [start, end] of parts) {
      const m = rows ? pad(end - start, 4) : pad(job.m, 4);
      const n = rows ? pad(job.n, 8) : pad(end - start, 8);
      worst = Math.max(worst, job.k * (m * n + m * packA + n * packB));
    }
    return worst;
  };
  const rowParts = bands(job.m, count, 4);
  const colParts = bands(job.n, count, 8);
  const byColumns = cost(colParts, false) < cost(rowParts, true);
  if (byColumns) return colParts.map(([j0, j1]) => ({ ...whole, j0, j1 }));
  return rowParts.map(([i0, i1]) => ({ ...whole, i0, i1 }));
}

/** [start, end) bands of [0, total) in `count` parts, each start a multiple of `unit`; empty bands dropped. */
export function bands(total: number, count: number, unit: number): [number, number][] {
  const units = Math.ceil(total / unit);
  const out: [number, number][] = [];
  let start = 0;
  for (let t = 0; t < count; t++) {
    const end = Math.min(total, Math.round((units * (t + 1)) / count) * unit);
    if (end > start) out.push([start, end]);
    start = Math.max(start, end);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// MaxPool

/** A 2-D pooling window over `planes` planes of h×w (the fields of window.ts's Window). */
export interface PoolWindow {
  readonly input: readonly number[];
  readonly output: readonly number[];
  readonly kernel: readonly number[];
  readonly strides: readonly number[];
  readonly dilations: readonly number[];
  readonly padsBegin: readonly number[];
}

/**
 * 2-D MaxPool of float32 planes in the module (maxpool2d in gemm.wat: f32x4.max, branch-free;
 * the JS compare loop mispredicts on every other cell of real activations). False when the
 * module cannot run here or memory ran out: the caller's loop then computes it.
 */
export function wasmMaxPool2d(src: Float32Array, dst: Float32Array, planes: number, win: PoolWindow): boolean {
  const [h, w] = win.input as [number, number];
  const [oh, ow] = win.output as [number, number];
  const [kh, kw] = win.kernel as [number, number];
  const [sh, sw] = win.strides as [number, number];
  const [dh, dw] = win.dilations as [number, number];
  const [ph, pw] = win.padsBegin as [number, number];
  if (planes * h * w !== src.length || planes * oh * ow !== dst.length || (src.length + dst.length) * 4 > MAX_BYTES / 2) return false;
  const call = GemmCall.begin();
  if (!call) return false;
  try {
    const tmpLength = Math.ceil(Math.max(pw + w, (ow + 3) * sw + (kw - 1) * dw + 8) / 4) * 4;
    const x = call.put(src);
    if (!x) return false;
    // bands of planes over the threads, each into an output block of its own: a row's last
    // vector store may pass the row's end by 3 floats, so bands may not share one block
    const parts = bands(planes, call.spreadCount(dst.length * kh * kw), 1);
    const outs: number[] = [];
    const descs: number[] = [];
    // bands write straight into a resident dst (which has the slack) when no row's last store
    // passes its end (rows of a multiple of 4: ResNet's and the CNN's) or there is one band;
    // otherwise into blocks of their own, copied
    const direct = parts.length === 1 || ow % 4 === 0 ? residentPtr(dst) : 0;
    for (const [p0, p1] of parts) {
      const out = direct ? direct + p0 * oh * ow * 4 : call.alloc((p1 - p0) * oh * ow * 4 + 16);
      const tmp = out && call.alloc(tmpLength * 4);
      const desc = tmp && call.putInts([x + p0 * h * w * 4, p1 - p0, h, w, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw, out, tmp, tmpLength]);
      if (!desc) return false;
      outs.push(out);
      descs.push(desc);
    }
    call.maxPool2d(descs);
    parts.forEach(([p0, p1], t) => call.get(outs[t]!, dst, p0 * oh * ow, (p1 - p0) * oh * ow));
    return true;
  } finally {
    call.end();
  }
}

// ---------------------------------------------------------------------------------------------
// GELU

/**
 * torch.onnx's erf GELU over float32 `src` into `dst` in the module (gelu in gemm.wat): bit for
 * bit fuse.ts's JS loop (erfRational32's float32 steps on 4 lanes at a time, no bounds checks).
 * False when the module cannot run here or memory ran out: the caller's loop then computes it.
 */
export function wasmGelu(src: Float32Array, dst: Float32Array, d: number, one: number, scale: number | undefined): boolean {
  const s = load();
  if (!s || src.length !== dst.length || src.length * 8 > MAX_BYTES / 2) return false;
  const call = GemmCall.begin()!;
  try {
    const x = call.put(src);
    const out = x && call.alloc(dst.length * 4 + 16);
    if (!out) return false;
    if (!call.gelu(x, out, src.length, 0, d, one, scale)) return false;
    call.get(out, dst, 0, dst.length);
    return true;
  } finally {
    call.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Softmax

/**
 * What attention does to its scores before the Softmax (a folded Mul by a scalar, then Add of
 * a mask): x · scale + mask, the mask's rows (of the row length) repeating over the rows.
 */
export interface ScoresPrologue {
  readonly scale: number;
  readonly mask: Float32Array;
}

/** 2^(j/64) for j in [0, 64), the table of softmax's exp in gemm.wat, placed on first use. */
let expTable = 0;

/**
 * Softmax over the last axis of float32 rows (`rows` rows of `len`) in the module (softmax in
 * gemm.wat): float64 like the JS loop, with an exp that is not Math.exp's bits but within 3e-14
 * of it (measured), two lanes at a time. `pre`: the scores are first scaled and masked (scale_add
 * in gemm.wat, rounded as the separate Mul and Add round). False when the module cannot run here
 * or memory ran out (or the mask does not repeat over whole rows): the caller then computes it.
 */
export function wasmSoftmax(src: Float32Array, dst: Float32Array, rows: number, len: number, pre?: ScoresPrologue): boolean {
  const s = load();
  if (!s || rows * len !== src.length || src.length !== dst.length || len === 0 || src.length * 8 > MAX_BYTES / 2) return false;
  if (pre && (pre.mask.length === 0 || pre.mask.length % len !== 0 || rows % (pre.mask.length / len) !== 0)) return false;
  if (!expTable) {
    const at = s.heap.alloc(64 * 8);
    if (!at) return false;
    new Float64Array(s.memory.buffer, at, 64).set(Float64Array.from({ length: 64 }, (_, j) => 2 ** (j / 64)));
    expTable = at;
  }
  const call = GemmCall.begin()!;
  try {
    // rows padded to a multiple of 4 floats, so vector loads and the paired stores stay in the row
    const ld = Math.ceil(len / 4) * 4;
    const x = ld === len ? call.put(src) : call.alloc(rows * ld * 4 + 32);
    const out = x && call.alloc(rows * ld * 4 + 32);
    // a row of doubles for each thread that may take a band of rows
    const tmpBytes = Math.ceil(((ld + 2) * 8) / 64) * 64;
    const tmp = out && call.alloc(tmpBytes * call.spreadCount(rows * len));
    if (!tmp) return false;
    if (ld !== len) for (let r = 0; r < rows; r++) call.set(x + r * ld * 4, src.subarray(r * len, (r + 1) * len));
    if (pre) {
      const mask = call.put(pre.mask);
      if (!mask) return false;
      s.exports.scale_add(x, rows, len, ld, pre.scale, mask, pre.mask.length / len);
    }
    if (!call.softmax(x, out, rows, len, ld, tmp, tmpBytes, expTable)) return false;
    if (ld === len) call.get(out, dst, 0, dst.length);
    else for (let r = 0; r < rows; r++) call.get(out + r * ld * 4, dst, r * len, len);
    return true;
  } finally {
    call.end();
  }
}

// ---------------------------------------------------------------------------------------------
// LayerNormalization

/**
 * LayerNormalization of `rows` float32 rows of `len` with a float32 scale (and bias) of `len`,
 * in the module (layernorm in gemm.wat): bit for bit norm.ts's loop, the output pass two lanes
 * at a time, the rows in bands over the intra-op threads. False when the module cannot run here
 * or memory ran out: the caller's loop then computes it.
 */
export function wasmLayerNorm(src: Float32Array, dst: Float32Array, rows: number, len: number, scale: Float32Array, bias: Float32Array | undefined, eps: number): boolean {
  const s = load();
  if (!s || rows * len !== src.length || src.length !== dst.length || len === 0 || scale.length !== len || (bias && bias.length !== len) || src.length * 8 > MAX_BYTES / 2) return false;
  const call = GemmCall.begin()!;
  try {
    const x = call.put(src);
    const out = x && call.alloc(dst.length * 4 + 16);
    const sc = out && call.put(scale);
    const b = bias ? sc && call.put(bias) : sc;
    if (!b) return false;
    if (!call.layerNorm(x, out, rows, len, sc, bias ? b : 0, eps)) return false;
    call.get(out, dst, 0, dst.length);
    return true;
  } finally {
    call.end();
  }
}

// ---------------------------------------------------------------------------------------------
// The plain product

/**
 * out[outOffset..] (M×N, row-major) = A[M,K] · B, with B as [K,N] or, when `bTransposed`, as
 * [N,K]. Sums are float32, as in BLAS sgemm. Inputs may alias the output.
 */
export function wasmSgemm(
  out: Float32Array,
  outOffset: number,
  a: Float32Array,
  aOffset: number,
  b: Float32Array,
  bOffset: number,
  m: number,
  n: number,
  k: number,
  bTransposed: boolean,
): void {
  if (m <= 0 || n <= 0) return;
  const call = k > 0 && (m * k + k * n + m * n) * 4 < MAX_BYTES / 2 ? GemmCall.begin() : null;
  if (call) {
    try {
      const aPtr = call.put(a.subarray(aOffset, aOffset + m * k));
      const bPtr = aPtr && call.put(b.subarray(bOffset, bOffset + k * n));
      const cPtr = bPtr && call.alloc(m * n * 4);
      if (cPtr) {
        const job: Job = {
          m, n, k, aMode: 0, a: aPtr, lda: k, bMode: bTransposed ? 1 : 0, b: bPtr, ldb: bTransposed ? k : n, c: cPtr, ldc: n,
          biasMode: 0, bias: 0, batch: 1, strideA: 0, strideB: 0, strideC: 0,
        };
        if (call.run(job)) {
          call.get(cPtr, out, outOffset, m * n);
          return;
        }
      }
    } finally {
      call.end();
    }
  }
  jsSgemm(out, outOffset, a, aOffset, b, bOffset, m, n, k, bTransposed);
}

/** The same product in plain JS, for runtimes without WebAssembly SIMD. */
function jsSgemm(
  out: Float32Array,
  outOffset: number,
  a: Float32Array,
  aOffset: number,
  b: Float32Array,
  bOffset: number,
  m: number,
  n: number,
  k: number,
  bTransposed: boolean,
): void {
  const rowB = bTransposed ? k : 1;
  const colB = bTransposed ? 1 : n;
  const acc = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = a[aOffset + i * k + p]!;
      const bp = bOffset + p * colB;
      for (let j = 0; j < n; j++) acc[i * n + j]! += av * b[bp + j * rowB]!;
    }
  }
  out.set(acc, outOffset);
}
