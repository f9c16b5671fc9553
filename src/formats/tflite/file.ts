import { closeSync, fstatSync, openSync, readSync } from '../../core/vfs.js';
import { ByteBuffer } from 'flatbuffers';
import { formatErrors, type FormatErrors } from '../../core/errors.js';
import { escapeControl } from '../../core/printable.js';
import { BuiltinOperator, Model as FbModel, type Operator as FbOperator, type Tensor as FbTensor } from './schema/index.js';
import { NeedMoreBytes, verifyModel } from './verify.js';

/**
 * A .tflite file as plain data: the FlatBuffer verified (verify.ts), then copied out of the
 * generated accessors into the interfaces below, so the reader never touches raw offsets.
 * Buffer bytes are not copied: inline buffers are views into the file's bytes, and the buffers a
 * model past 2 GB stores after its FlatBuffer are file ranges (offset, size) read when used.
 */

export interface TflQuantization {
  readonly scale: readonly number[];
  readonly zeroPoint: readonly number[];
  /** The axis scale and zeroPoint run along when they hold more than one value. */
  readonly axis: number;
}

export interface TflTensor {
  readonly index: number;
  readonly name: string;
  /** TensorType code (schema enum). */
  readonly type: number;
  readonly shape: readonly number[];
  /** shape with -1 for sizes unknown until run time, when the file gives it. */
  readonly signature: readonly number[] | null;
  readonly buffer: number;
  readonly quantization: TflQuantization | null;
  readonly isVariable: boolean;
  readonly sparse: boolean;
}

export interface TflOperator {
  readonly index: number;
  /** BuiltinOperator code (the larger of the deprecated byte code and the int32 one), or CUSTOM. */
  readonly code: number;
  readonly custom: string | null;
  readonly version: number;
  /** Tensor indices; -1 is an omitted optional input. */
  readonly inputs: readonly number[];
  readonly outputs: readonly number[];
  /** BuiltinOptions union member number (0 when none), and the options table when it is one modelbridge reads. */
  readonly optionsType: number;
  readonly raw: FbOperator;
}

export interface TflSubgraph {
  readonly index: number;
  readonly name: string;
  readonly tensors: readonly TflTensor[];
  readonly inputs: readonly number[];
  readonly outputs: readonly number[];
  readonly operators: readonly TflOperator[];
}

export type TflBuffer =
  | { readonly kind: 'empty' }
  | { readonly kind: 'inline'; readonly data: Uint8Array }
  /** Stored after the FlatBuffer, at a byte offset from the start of the file. */
  | { readonly kind: 'file'; readonly offset: number; readonly size: number };

export interface TflSignature {
  readonly key: string;
  readonly subgraph: number;
  readonly inputs: readonly { readonly name: string; readonly tensor: number }[];
  readonly outputs: readonly { readonly name: string; readonly tensor: number }[];
}

export interface TflModel {
  readonly path: string;
  readonly fileSize: number;
  readonly version: number;
  readonly description: string;
  readonly subgraphs: readonly TflSubgraph[];
  readonly buffers: readonly TflBuffer[];
  readonly metadata: readonly { readonly name: string; readonly buffer: number }[];
  readonly signatures: readonly TflSignature[];
}

/** The FlatBuffer format caps a buffer at 2 GiB; a larger file keeps its weights after it. */
const FLATBUFFER_MAX = 2 ** 31 - 1;
/** First read of a file too large to read whole; doubled while the FlatBuffer reaches past it. */
const FIRST_READ = 16 * 1024 * 1024;
/** Files up to this size are read whole (one read, tensors are views); larger ones in prefixes. */
const READ_WHOLE = 1024 * 1024 * 1024;

export { FILE_IDENTIFIER, hasTfliteIdentifier } from './detect.js';

/** Reads and verifies a .tflite file. */
export function readTfliteFile(path: string): TflModel {
  const e: FormatErrors = formatErrors(path);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return e.fail('path', 'a readable .tflite file');
  }
  try {
    const size = fstatSync(fd).size;
    let want = size <= READ_WHOLE ? size : FIRST_READ;
    for (;;) {
      const bytes = new Uint8Array(Math.min(want, size, FLATBUFFER_MAX));
      let at = 0;
      while (at < bytes.byteLength) {
        const got = readSync(fd, bytes, at, bytes.byteLength - at, at);
        if (got <= 0) e.fail(`byte ${at}`, `${bytes.byteLength} bytes (the file shrank while reading)`);
        at += got;
      }
      try {
        verifyModel(bytes, e, Math.min(size, FLATBUFFER_MAX));
        return parse(path, size, bytes, e);
      } catch (err) {
        if (!(err instanceof NeedMoreBytes) || bytes.byteLength >= Math.min(size, FLATBUFFER_MAX)) throw err;
        want = bytes.byteLength * 2;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Parses verified bytes (a whole file, or the FlatBuffer prefix of one of `fileSize` bytes). */
export function parseTflite(path: string, bytes: Uint8Array, fileSize = bytes.byteLength): TflModel {
  const e: FormatErrors = formatErrors(path);
  verifyModel(bytes, e, bytes.byteLength);
  return parse(path, fileSize, bytes, e);
}

function parse(path: string, fileSize: number, bytes: Uint8Array, e: FormatErrors): TflModel {
  const model = FbModel.getRootAsModel(new ByteBuffer(bytes));
  const text = (s: string | null | undefined): string => escapeControl(s ?? '');

  const buffers: TflBuffer[] = [];
  for (let i = 0; i < model.buffersLength(); i++) {
    const b = model.buffers(i)!;
    const offset = b.offset();
    const size = b.size();
    if (offset > 1n) {
      const where = `buffers[${i}]`;
      if (offset + size > BigInt(fileSize)) e.fail(where, `offset ${offset} + size ${size} within the file's ${fileSize} bytes`);
      buffers.push({ kind: 'file', offset: Number(offset), size: Number(size) });
    } else {
      const data = b.dataArray();
      buffers.push(data && data.byteLength > 0 ? { kind: 'inline', data } : { kind: 'empty' });
    }
  }

  const codes: { code: number; custom: string | null; version: number }[] = [];
  for (let i = 0; i < model.operatorCodesLength(); i++) {
    const c = model.operatorCodes(i)!;
    const code = Math.max(c.deprecatedBuiltinCode(), c.builtinCode());
    codes.push({ code, custom: code === BuiltinOperator.CUSTOM ? text(c.customCode()) : null, version: c.version() });
  }

  const subgraphs: TflSubgraph[] = [];
  for (let s = 0; s < model.subgraphsLength(); s++) {
    const g = model.subgraphs(s)!;
    const where = `subgraphs[${s}]`;
    const tensors: TflTensor[] = [];
    for (let t = 0; t < g.tensorsLength(); t++) tensors.push(tensorOf(g.tensors(t)!, t, text));
    const index = (v: number, what: string): number => {
      if (!Number.isInteger(v) || v < -1 || v >= tensors.length) e.fail(`${where} ${what}`, `a tensor index below ${tensors.length}, not ${v}`);
      return v;
    };
    const inputs = ints(g.inputsArray()).map((v, k) => index(v, `inputs[${k}]`));
    const outputs = ints(g.outputsArray()).map((v, k) => index(v, `outputs[${k}]`));
    const operators: TflOperator[] = [];
    for (let o = 0; o < g.operatorsLength(); o++) {
      const op = g.operators(o)!;
      const opWhere = `${where} operators[${o}]`;
      const c = codes[op.opcodeIndex()];
      if (!c) e.fail(opWhere, `an opcode_index below the ${codes.length} operator codes, not ${op.opcodeIndex()}`);
      operators.push({
        index: o,
        code: c.code,
        custom: c.custom,
        version: c.version,
        inputs: ints(op.inputsArray()).map((v, k) => index(v, `operators[${o}] inputs[${k}]`)),
        outputs: ints(op.outputsArray()).map((v, k) => index(v, `operators[${o}] outputs[${k}]`)),
        optionsType: op.builtinOptionsType(),
        raw: op,
      });
    }
    subgraphs.push({ index: s, name: text(g.name()), tensors, inputs, outputs, operators });
  }
  if (subgraphs.length === 0) e.fail('subgraphs', 'at least one subgraph');

  const metadata: { name: string; buffer: number }[] = [];
  for (let i = 0; i < model.metadataLength(); i++) {
    const m = model.metadata(i)!;
    metadata.push({ name: text(m.name()), buffer: m.buffer() });
  }

  const signatures: TflSignature[] = [];
  for (let i = 0; i < model.signatureDefsLength(); i++) {
    const d = model.signatureDefs(i)!;
    const where = `signature_defs[${i}]`;
    const sub = d.subgraphIndex();
    if (sub >= subgraphs.length) e.fail(`${where} subgraph_index`, `a subgraph below ${subgraphs.length}, not ${sub}`);
    const count = subgraphs[sub]!.tensors.length;
    const map = (n: number, get: (k: number) => { name(): string | null; tensorIndex(): number } | null, side: string) =>
      Array.from({ length: n }, (_, k) => {
        const m = get(k)!;
        if (m.tensorIndex() >= count) e.fail(`${where} ${side}[${k}]`, `a tensor index below ${count}, not ${m.tensorIndex()}`);
        return { name: text(m.name()), tensor: m.tensorIndex() };
      });
    signatures.push({
      key: text(d.signatureKey()),
      subgraph: sub,
      inputs: map(d.inputsLength(), (k) => d.inputs(k), 'inputs'),
      outputs: map(d.outputsLength(), (k) => d.outputs(k), 'outputs'),
    });
  }

  return { path, fileSize, version: model.version(), description: text(model.description()), subgraphs, buffers, metadata, signatures };
}

function tensorOf(t: FbTensor, index: number, text: (s: string | null) => string): TflTensor {
  const q = t.quantization();
  let quantization: TflQuantization | null = null;
  if (q && q.scaleLength() > 0) {
    const scale = [...(q.scaleArray() ?? [])];
    const zeroPoint = Array.from({ length: q.zeroPointLength() }, (_, k) => Number(q.zeroPoint(k)!));
    quantization = { scale, zeroPoint, axis: q.quantizedDimension() };
  }
  const signature = t.shapeSignatureArray();
  return {
    index,
    name: text(t.name()),
    type: t.type(),
    shape: ints(t.shapeArray()),
    signature: signature && signature.length ? ints(signature) : null,
    buffer: t.buffer(),
    quantization,
    isVariable: t.isVariable(),
    sparse: t.sparsity() !== null,
  };
}

const ints = (a: Int32Array | null): number[] => (a ? Array.from(a) : []);

/** The options table of an operator, as the generated class `Ctor` (checked against the union member number). */
/** What every generated table class is: a position in a ByteBuffer. */
export interface FbTable {
  bb: ByteBuffer | null;
  bb_pos: number;
}

export function optionsOf<T extends FbTable>(op: TflOperator, member: number, Ctor: new () => T): T | null {
  if (op.optionsType !== member) return null;
  return op.raw.builtinOptions(new Ctor()) as T | null;
}
