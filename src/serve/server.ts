/**
 * `modelbridge serve`: TensorFlow Serving's REST API (tensorflow_serving/g3doc/api_rest.md) over
 * fastify, for every format modelbridge reads. Paths are matched with TF Serving's own regular
 * expressions (model_servers/http_rest_api_util.cc) rather than fastify's router, whose `:name`
 * parameters would swallow the `:predict` suffix; every /v1/ path TF Serving's handler would take
 * gets its answer, including its "Malformed request" for the rest.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Writable } from 'node:stream';
import { FormatError, UsageError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { ModelConfig } from './config.js';
import { parseRequestBody } from './json.js';
import { Metrics } from './metrics.js';
import { RunQueue } from './queue.js';
import { invalidArgument, ServeError, type StatusCode } from './status.js';
import { parsePredictTensors, predictDocument, predictResponse, shapeProto, tfEnumName, type InputSpec } from './tensors.js';
import { DEFAULT_SIGNATURE, ModelManager, type LoadedVersion } from './versions.js';
import { WorkerPool } from './pool.js';

export interface ServeOptions {
  readonly models: readonly ModelConfig[];
  readonly host: string;
  readonly port: number;
  /** Largest request body accepted (bytes); larger ones get 413. */
  readonly maxBodyBytes: number;
  /** Most rows (instances, or the 0th dimension of columnar inputs) in one request. */
  readonly maxBatchSize: number;
  /** Per-request deadline (TF Serving's --rest_api_timeout_in_ms); 504 when it passes. */
  readonly timeoutMs: number;
  /** Most model runs waiting at once; the next request gets 503. */
  readonly maxQueue: number;
  /** How often the base paths are polled for new versions (ms; 0: fs.watch only). */
  readonly pollMs: number;
  /** How long a new version folder must stay unchanged before it is loaded (ms). */
  readonly settleMs: number;
  readonly logLevel: string;
  /** Worker threads running the models (0: the server's own thread). */
  readonly workers?: number;
  /** Where the structured (pino, one JSON object per line) log goes; default standard error. */
  readonly logStream?: Writable;
}

export { SERVE_DEFAULTS } from './defaults.js';

/** TF Serving's kPredictionApiGegex and kModelStatusApiRegex. */
const PREDICT = /^\/v1\/models\/([^/:]+)(?:(?:\/versions\/(\d+))|(?:\/labels\/([^/:]+)))?:(classify|regress|predict)$/i;
const STATUS = /^\/v1\/models(?:\/([^/:]+))?(?:(?:\/versions\/(\d+))|(?:\/labels\/([^/:]+)))?(?:\/(metadata))?$/i;
export const METRICS_PATH = '/monitoring/prometheus/metrics';

export interface Server {
  readonly app: FastifyInstance;
  readonly manager: ModelManager;
  readonly metrics: Metrics;
  /** The address listened on, e.g. http://127.0.0.1:8501. */
  readonly url: string;
  /** Stops accepting, lets requests in flight finish, stops watching; resolves when done. */
  close(): Promise<void>;
}

interface Target {
  readonly name: string;
  readonly version?: number;
  readonly label?: string;
}

/** What one request resolved to, for the metrics and the log. */
interface Outcome {
  model: string;
  version: string;
  api: string;
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw invalidArgument(`Failed to decode ${what}:${part}`);
  }
}

function parseVersion(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const v = Number(text);
  if (!Number.isSafeInteger(v)) throw invalidArgument(`Failed to convert version: ${text} to numeric.`);
  return v;
}

export async function startServer(options: ServeOptions): Promise<Server> {
  const app = Fastify({
    logger: { level: options.logLevel, stream: options.logStream ?? process.stderr },
    // Per-request lines would cost more than the OR gate's run: errors are logged, successes counted.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.maxBodyBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  const log = app.log;
  const pool = options.workers ? new WorkerPool(options.workers, options.maxQueue) : undefined;
  const manager = new ModelManager(options.models, { pollMs: options.pollMs, settleMs: options.settleMs, log, ...(pool ? { pool } : {}) });
  try {
    await manager.start();
  } catch (error) {
    await manager.close();
    await pool?.close();
    throw error;
  }
  const metrics = new Metrics();
  const queue = new RunQueue(options.maxQueue);
  // Metric labels name configured models only: names from URLs would let any client grow the series without bound.
  const served = new Set(manager.modelNames());
  const labelOf = (name: string) => (served.has(name) ? name : '');

  // TF Serving reads the body whatever its Content-Type (curl -d sends form encoding): as text.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  const fail = (reply: FastifyReply, request: FastifyRequest, error: unknown, outcome: Outcome): FastifyReply => {
    let code: StatusCode;
    let message: string;
    if (error instanceof ServeError) {
      code = error.code;
      message = error.message;
    } else if (error instanceof UsageError || error instanceof FormatError || error instanceof RangeError) {
      // The runtime refusing these inputs (a shape the graph cannot take): the request's fault.
      code = 'INVALID_ARGUMENT';
      message = error.message.split('\n')[0]!;
    } else {
      code = 'INTERNAL';
      message = `internal error (a modelbridge bug): ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
      log.error({ err: error, method: request.method, url: request.url }, 'request failed');
    }
    metrics.request(labelOf(outcome.model), outcome.version, code);
    const status = new ServeError(code, message).httpStatus;
    if (code !== 'INTERNAL') log.warn({ method: request.method, url: request.url, status, error: message }, 'request refused');
    return reply.code(status).type('application/json').send(JSON.stringify({ error: message }));
  };

  const ok = (reply: FastifyReply, body: string, outcome: Outcome, started: number): FastifyReply => {
    metrics.request(labelOf(outcome.model), outcome.version, 'OK');
    metrics.latency(labelOf(outcome.model), outcome.version, outcome.api, (performance.now() - started) * 1000);
    return reply.code(200).type('application/json').send(body);
  };

  const handle = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const started = performance.now();
    const path = request.url.split('?')[0]!;
    const outcome: Outcome = { model: '', version: '', api: '' };
    try {
      if (request.method === 'POST') {
        const m = PREDICT.exec(path);
        if (!m || m[4] !== 'predict') {
          if (m && (m[4] === 'classify' || m[4] === 'regress')) {
            throw new ServeError('UNIMPLEMENTED', `${m[4]} needs tf.Example inputs, which modelbridge does not serve; use :predict`);
          }
          throw invalidArgument(`Malformed request: POST ${path}`);
        }
        const target: Target = targetOf(m[1]!, m[2], m[3]);
        outcome.model = target.name;
        outcome.api = 'predict';
        const body = await predict(target, typeof request.body === 'string' ? request.body : '', outcome);
        return ok(reply, body, outcome, started);
      }
      const m = request.method === 'GET' ? STATUS.exec(path) : null;
      if (!m) throw invalidArgument(`Malformed request: ${request.method} ${path}`);
      if (!m[1]) throw invalidArgument('Missing model name in request.');
      const target = targetOf(m[1], m[2], m[3]);
      outcome.model = target.name;
      if (m[4] !== undefined) {
        if (m[4] !== 'metadata') throw invalidArgument(`Malformed request: ${request.method} ${path}`);
        outcome.api = 'GetModelMetadata';
        return ok(reply, metadata(target, outcome), outcome, started);
      }
      outcome.api = 'GetModelStatus';
      return ok(reply, status(target), outcome, started);
    } catch (error) {
      return fail(reply, request, error, outcome);
    }
  };

  const targetOf = (name: string, version: string | undefined, label: string | undefined): Target => {
    const t: Target = { name: decode(name, 'model name') };
    const v = parseVersion(version);
    const l = label === undefined || label === '' ? undefined : decode(label, 'model version label');
    return { ...t, ...(v === undefined ? {} : { version: v }), ...(l === undefined ? {} : { label: l }) };
  };

  const predict = async (target: Target, text: string, outcome: Outcome): Promise<string> => {
    // TF Serving's order: the document is parsed before the model is looked up.
    const { doc, signatureName } = predictDocument(parseRequestBody(text));
    const version = manager.acquire(target.name, target.version, target.label);
    outcome.version = String(version.version);
    try {
      const runner = version.runner(signatureName);
      const graph = version.model.graph!;
      const specs: InputSpec[] = [...runner.signature.inputs].map(([key, graphName]) => ({ name: key, dtype: graph.inputs.find((i) => i.name === graphName)?.dtype ?? 'float32' }));
      const { format, tensors } = parsePredictTensors(doc, specs, options.maxBatchSize);
      const feeds = Object.fromEntries(tensors);
      const outputs = pool
        ? await pool.run(version.key, signatureName === undefined || signatureName === '' ? DEFAULT_SIGNATURE : signatureName, feeds, options.timeoutMs)
        : await queue.submit(() => runner.run(feeds), options.timeoutMs);
      const ordered: Array<[string, Tensor]> = [...runner.signature.outputs.keys()].map((k) => [k, outputs[k]!]);
      return predictResponse(ordered, format);
    } finally {
      version.release();
    }
  };

  const status = (target: Target): string => {
    const version = target.label !== undefined ? manager.labelVersion(target.name, target.label) : target.version;
    const entries = manager.status(target.name, version);
    return JSON.stringify({
      model_version_status: entries.map((e) => ({
        version: String(e.version),
        state: e.state,
        status: { error_code: e.error?.code ?? 'OK', error_message: e.error?.message ?? '' },
      })),
    });
  };

  const metadata = (target: Target, outcome: Outcome): string => {
    const version: LoadedVersion = manager.acquire(target.name, target.version, target.label);
    outcome.version = String(version.version);
    try {
      const graph = version.model.graph!;
      const info = (graphName: string, inputs: boolean) => {
        const v = (inputs ? graph.inputs : graph.outputs).find((x) => x.name === graphName);
        return { dtype: v ? tfEnumName(v.dtype) : 'DT_INVALID', tensor_shape: shapeProto(v ? v.shape : null), name: graphName };
      };
      const signatureDef: Record<string, unknown> = {};
      for (const [name, s] of version.signatures()) {
        signatureDef[name] = {
          inputs: Object.fromEntries([...s.inputs].map(([k, g]) => [k, info(g, true)])),
          outputs: Object.fromEntries([...s.outputs].map(([k, g]) => [k, info(g, false)])),
          method_name: 'tensorflow/serving/predict',
          defaults: {},
        };
      }
      return JSON.stringify({
        model_spec: { name: target.name, signature_name: '', version: String(version.version) },
        metadata: { signature_def: { signature_def: signatureDef } },
      });
    } finally {
      version.release();
    }
  };

  // Every method: TF Serving answers the ones it has no API for with its "Malformed request".
  app.route({ method: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'], url: '/v1/*', handler: handle });
  app.get(METRICS_PATH, async (_request, reply) => reply.type('text/plain; version=0.0.4').send(metrics.render()));
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).type('application/json').send(JSON.stringify({ error: `Not found: ${request.method} ${request.url.split('?')[0]}` }));
  });
  // fastify's own refusals (a body over --max-body-bytes: 413, a broken chunked body: 400) in TF Serving's shape.
  app.setErrorHandler((error: { statusCode?: number; message?: string }, request, reply) => {
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 500;
    const message = status === 413 ? `Request body is larger than ${options.maxBodyBytes} bytes (--max-body-bytes)` : (error.message ?? 'error').split('\n')[0]!;
    if (status >= 500) log.error({ err: error, method: request.method, url: request.url }, 'request failed');
    else log.warn({ method: request.method, url: request.url, status, error: message }, 'request refused');
    metrics.request('', '', status === 413 ? 'RESOURCE_EXHAUSTED' : status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT');
    void reply.code(status).type('application/json').send(JSON.stringify({ error: message }));
  });

  let address: string;
  try {
    address = await app.listen({ host: options.host, port: options.port });
  } catch (error) {
    await manager.close();
    await pool?.close();
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new UsageError(`port ${options.port} on ${options.host} is in use (choose another with --port)`);
    if (e.code === 'EACCES') throw new UsageError(`no permission to listen on port ${options.port} (ports below 1024 need privileges)`);
    if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') throw new UsageError(`cannot listen on --host ${options.host}: no such address here`);
    throw error;
  }
  for (const name of manager.modelNames()) {
    let versions: number[] = [];
    try {
      versions = manager.status(name).filter((s) => s.state === 'AVAILABLE').map((s) => s.version);
    } catch {
      // No version seen yet: logged below; the base path is watched.
    }
    if (versions.length > 0) log.info({ model: name, versions, url: `${address}/v1/models/${encodeURIComponent(name)}` }, 'serving');
    else log.warn({ model: name }, 'no servable version yet: waiting for BASE/<version>/ to appear');
  }
  let closing: Promise<void> | undefined;
  return {
    app,
    manager,
    metrics,
    url: address,
    close: () => {
      closing ??= (async () => {
        await app.close();
        await manager.close();
        await pool?.close();
      })();
      return closing;
    },
  };
}
