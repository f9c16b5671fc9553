// The fastify + onnxruntime-node server bench/serve.mjs compares `modelbridge serve` with: the
// same framework and the same JSON API, onnxruntime-node (1 intra-op thread) doing the runs.
//   node bench/serve-ort.mjs MODEL.onnx PORT [NAME]      serves /v1/models/NAME:predict (default
//   or); prints "ready" once it listens
import Fastify from 'fastify';
import ort from 'onnxruntime-node';

const [file, port, name = 'or'] = process.argv.slice(2);
const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
const [input] = session.inputNames;
const app = Fastify({ bodyLimit: 64 * 1024 * 1024 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
const shapeOf = (v) => (Array.isArray(v) ? [v.length, ...shapeOf(v[0])] : []);
app.post(`/v1/models/${name}:predict`, async (request, reply) => {
  const rows = JSON.parse(request.body).instances;
  const x = new ort.Tensor('float32', Float32Array.from(rows.flat(Infinity)), shapeOf(rows));
  const y = Object.values(await session.run({ [input]: x }))[0];
  const per = y.data.length / y.dims[0];
  const out = [];
  for (let i = 0; i < y.dims[0]; i++) out.push(Array.from(y.data.subarray(i * per, (i + 1) * per)));
  return reply.type('application/json').send(JSON.stringify({ predictions: out }));
});
await app.listen({ host: '127.0.0.1', port: Number(port) });
console.log('ready');
