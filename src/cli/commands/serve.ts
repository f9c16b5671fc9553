import { basename, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { UsageError } from '../../core/errors.js';
import { DEFAULT_POLICY, parseVersionPolicy, readModelConfig, type ModelConfig } from '../../serve/config.js';
import { SERVE_DEFAULTS } from '../../serve/defaults.js';
import type { Server } from '../../serve/server.js';
import { exitWithError } from '../errors.js';

function positiveInt(name: string, value: number, min = 1): number {
  if (!Number.isInteger(value) || value < min) throw new UsageError(`--${name} must be a whole number >= ${min}, not ${value}`);
  return value;
}

export function serveCommand(y: Argv): Argv {
  return y.command(
    'serve [base]',
    "Serve models over TensorFlow Serving's REST API, swapping in new versions as they appear",
    (c) =>
      c
        .positional('base', { type: 'string', describe: 'model base path holding numbered version folders: BASE/<version>/<model file or folder> (any format modelbridge reads)' })
        .option('model-name', { type: 'string', describe: 'name served at /v1/models/NAME (default: the base path\'s folder name)' })
        .option('model-config', { type: 'string', describe: "several models: a TF Serving model config file (text format: model_config_list { config { name, base_path, model_version_policy, version_labels } }) instead of BASE" })
        .option('port', { type: 'number', default: SERVE_DEFAULTS.port, describe: 'TCP port of the REST API (0: any free port, shown in the log)' })
        .option('host', { type: 'string', default: SERVE_DEFAULTS.host, describe: 'address to listen on (0.0.0.0 for every interface)' })
        .option('version-policy', { type: 'string', default: 'latest', describe: 'versions served: latest (the newest), latest:N, all, or specific:V1,V2' })
        .option('poll-seconds', { type: 'number', default: SERVE_DEFAULTS.pollMs / 1000, describe: 'how often base paths are polled for new or removed versions, besides file watching (0: watching only)' })
        .option('settle-ms', { type: 'number', default: SERVE_DEFAULTS.settleMs, describe: 'a new version folder must stay unchanged this long before it is loaded (a copy still under way is not loaded)' })
        .option('max-body-bytes', { type: 'number', default: SERVE_DEFAULTS.maxBodyBytes, describe: 'largest request body; larger ones get 413' })
        .option('max-batch-size', { type: 'number', default: SERVE_DEFAULTS.maxBatchSize, describe: 'most rows (instances, or dimension 0 of inputs) in one request; more get 400' })
        .option('timeout-ms', { type: 'number', default: SERVE_DEFAULTS.timeoutMs, describe: 'per-request deadline; a request past it gets 504' })
        .option('max-queue', { type: 'number', default: SERVE_DEFAULTS.maxQueue, describe: 'most requests waiting for a model run; the next one gets 503' })
        .option('workers', { type: 'number', default: 0, describe: 'worker threads running the models, each holding every loaded version (0: the server thread runs them; 2 uses both cores of a 2-core machine for inference)' })
        .option('log-level', { type: 'string', default: SERVE_DEFAULTS.logLevel, choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], describe: 'structured log (JSON lines, on standard error) level' })
        .example('$0 serve models/or-gate', 'serves models/or-gate/<version>/... as /v1/models/or-gate on 127.0.0.1:8501')
        .example("curl -d '{\"instances\": [[1, 1]]}' localhost:8501/v1/models/or-gate:predict", 'a prediction, as from TF Serving: {"predictions":[[0.998317719]]}')
        .example('$0 serve --model-config models.config --port 9000', 'several models, each with its own base path and version policy')
        .epilogue(
          [
            'API (TF Serving\'s REST API): GET /v1/models/NAME[/versions/V|/labels/L] (version status), GET .../metadata (signature_def),',
            'POST /v1/models/NAME[/versions/V|/labels/L]:predict with {"instances": ...} or {"inputs": ...} and optional "signature_name";',
            `GET ${'/monitoring/prometheus/metrics'} (request counts and latency histograms per model and version).`,
            'A new version folder is loaded and checked (parse, checksums, a run; golden-inputs.* and golden-outputs.* in the folder',
            'are checked like validate --inputs/--expect) before it serves; a broken one is refused and logged while the old one serves.',
            'SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0.',
          ].join(' '),
        ),
    (argv) => {
      let models: ModelConfig[];
      if (argv.modelConfig !== undefined) {
        if (argv.base !== undefined) throw new UsageError('give a base path or --model-config, not both');
        if (argv.modelName !== undefined) throw new UsageError('--model-name names the model of a base path; --model-config names its own');
        models = readModelConfig(argv.modelConfig);
      } else {
        if (argv.base === undefined) throw new UsageError('give a model base path (BASE/<version>/<model>) or --model-config FILE');
        const basePath = resolve(argv.base);
        const name = argv.modelName ?? basename(basePath);
        if (name === '' || /[/:]/.test(name)) throw new UsageError(`--model-name ${JSON.stringify(name)}: a model name has no / or :`);
        models = [{ name, basePath, policy: argv.versionPolicy === 'latest' ? DEFAULT_POLICY : parseVersionPolicy(argv.versionPolicy), labels: new Map() }];
      }
      const port = positiveInt('port', argv.port, 0);
      if (port > 65535) throw new UsageError(`--port must be at most 65535, not ${port}`);
      if (!(argv.pollSeconds >= 0)) throw new UsageError(`--poll-seconds must be a number >= 0, not ${argv.pollSeconds}`);
      const options = {
        models,
        host: argv.host,
        port,
        maxBodyBytes: positiveInt('max-body-bytes', argv.maxBodyBytes),
        maxBatchSize: positiveInt('max-batch-size', argv.maxBatchSize),
        timeoutMs: positiveInt('timeout-ms', argv.timeoutMs),
        maxQueue: positiveInt('max-queue', argv.maxQueue),
        pollMs: Math.round(argv.pollSeconds * 1000),
        settleMs: positiveInt('settle-ms', argv.settleMs, 0),
        logLevel: argv.logLevel,
        workers: positiveInt('workers', argv.workers, 0),
      };
      // yargs runs handlers synchronously; the server lives on in the event loop from here. The
      // server module (fastify, pino: half the CLI bundle) is loaded only now, so the other
      // commands start as fast as before.
      import('../../serve/server.js').then(({ startServer }) => startServer(options)).then(onSignals, exitWithError);
    },
  );
}

/** SIGTERM/SIGINT: stop accepting, drain, exit 0; a second signal exits at once. */
function onSignals(server: Server): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    server.app.log.info({ signal }, 'shutting down: finishing requests in flight');
    server.close().then(
      () => {
        server.app.log.info('stopped');
        process.exit(0);
      },
      (error: unknown) => exitWithError(error),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
