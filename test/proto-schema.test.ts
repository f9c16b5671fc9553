import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { ONNX_SCHEMA } from '../src/formats/onnx/schema-json.js';
import { TF_SCHEMA } from '../src/formats/tf/schema-json.js';
import { ROOT } from './cli-helpers.js';

/** The committed schema descriptors are what scripts/build-proto.mjs makes of proto/ today. */
describe('compiled protobuf schemas', () => {
  it('are fresh (else run node scripts/build-proto.mjs)', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-proto.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('describe the same messages and field numbers as the .proto text', () => {
    const onnxText = protobuf.parse(readFileSync(join(ROOT, 'proto', 'onnx.proto'), 'utf8'), { keepCase: true }).root;
    const fromJson = protobuf.Root.fromJSON(ONNX_SCHEMA);
    for (const name of ['onnx.ModelProto', 'onnx.GraphProto', 'onnx.TensorProto', 'onnx.NodeProto', 'onnx.AttributeProto']) {
      const a = onnxText.lookupType(name);
      const b = fromJson.lookupType(name);
      expect(Object.fromEntries(Object.entries(b.fields).map(([k, f]) => [k, f.id]))).toEqual(Object.fromEntries(Object.entries(a.fields).map(([k, f]) => [k, f.id])));
    }
    const tf = protobuf.Root.fromJSON(TF_SCHEMA);
    // Field numbers from tensorflow/core/protobuf/saved_model.proto and meta_graph.proto.
    expect(tf.lookupType('tensorflow.SavedModel').fields['meta_graphs']!.id).toBe(2);
    expect(tf.lookupType('tensorflow.MetaGraphDef').fields['signature_def']!.id).toBe(5);
    expect(tf.lookupType('tensorflow.MetaGraphDef').fields['object_graph_def']!.id).toBe(7);
  });
});
