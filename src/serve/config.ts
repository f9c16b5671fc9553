/**
 * Which models a server serves: one base path (`serve BASE --model-name NAME`) or TF Serving's
 * `--model_config_file`, a text-format `ModelServerConfig` (tensorflow_serving/config/
 * model_server_config.proto):
 *
 *   model_config_list {
 *     config { name: "or" base_path: "/models/or" model_platform: "tensorflow"
 *              model_version_policy { specific { versions: 1 versions: 2 } }
 *              version_labels { key: "stable" value: 1 } }
 *   }
 *
 * Only the fields that say what to serve are read (name, base_path, model_version_policy,
 * version_labels; model_platform is accepted and ignored: every format modelbridge reads is
 * served). protobufjs, which the project has, reads binary protobuf and JSON but not the text
 * format, hence the small reader here; an unknown field is refused by name rather than ignored.
 */
import { isAbsolute, resolve, dirname } from 'node:path';
import { readFileSync } from 'node:fs';
import { UsageError } from '../core/errors.js';

export type VersionPolicy = { readonly kind: 'latest'; readonly count: number } | { readonly kind: 'all' } | { readonly kind: 'specific'; readonly versions: readonly number[] };

export interface ModelConfig {
  readonly name: string;
  readonly basePath: string;
  readonly policy: VersionPolicy;
  readonly labels: ReadonlyMap<string, number>;
}

/** TF Serving's default: the newest version only. */
export const DEFAULT_POLICY: VersionPolicy = { kind: 'latest', count: 1 };

/** `latest`, `latest:N`, `all`, `specific:1,2`: the --version-policy option. */
export function parseVersionPolicy(text: string): VersionPolicy {
  const m = /^(latest|all|specific)(?::(.*))?$/.exec(text.trim());
  if (m) {
    const [, kind, arg] = m;
    if (kind === 'all' && arg === undefined) return { kind: 'all' };
    if (kind === 'latest') {
      const count = arg === undefined ? 1 : Number(arg);
      if (Number.isInteger(count) && count >= 1) return { kind: 'latest', count };
    }
    if (kind === 'specific' && arg !== undefined) {
      const versions = arg.split(',').map((v) => Number(v.trim()));
      if (versions.length > 0 && versions.every((v) => Number.isSafeInteger(v) && v >= 0)) return { kind: 'specific', versions };
    }
  }
  throw new UsageError(`--version-policy ${JSON.stringify(text)}: expected latest, latest:N, all or specific:V1,V2,...`);
}

// ---------------------------------------------------------------------------------------------
// Protobuf text format, the subset a model config file uses: messages, strings, numbers, enums.

type Field = string | number | Message;
interface Message {
  readonly fields: Array<readonly [string, Field, number]>;
}

class TextFormat {
  private i = 0;

  constructor(
    private readonly s: string,
    private readonly file: string,
  ) {}

  private fail(what: string): never {
    const line = this.s.slice(0, this.i).split('\n').length;
    throw new UsageError(`${this.file}: line ${line}: ${what}`);
  }

  private skip(): void {
    for (;;) {
      const m = /^(?:\s+|#[^\n]*)/.exec(this.s.slice(this.i, this.i + 4096));
      if (!m || m[0].length === 0) return;
      this.i += m[0].length;
    }
  }

  message(top: boolean): Message {
    const fields: Array<readonly [string, Field, number]> = [];
    for (;;) {
      this.skip();
      if (this.i >= this.s.length) {
        if (top) return { fields };
        this.fail("expected '}' before the end of the file");
      }
      if (this.s[this.i] === '}') {
        if (top) this.fail("'}' without a matching '{'");
        this.i++;
        return { fields };
      }
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.i, this.i + 256));
      if (!m) this.fail(`expected a field name, found ${JSON.stringify(this.s.slice(this.i, this.i + 10))}`);
      const line = this.s.slice(0, this.i).split('\n').length;
      this.i += m[0].length;
      this.skip();
      let colon = false;
      if (this.s[this.i] === ':') {
        colon = true;
        this.i++;
        this.skip();
      }
      if (this.s[this.i] === '{' || this.s[this.i] === '<') {
        this.i++;
        fields.push([m[0], this.message(false), line]);
      } else {
        if (!colon) this.fail(`expected ':' after ${m[0]}`);
        fields.push([m[0], this.scalar(), line]);
      }
      this.skip();
      if (this.s[this.i] === ';' || this.s[this.i] === ',') this.i++;
    }
  }

  private scalar(): string | number {
    const c = this.s[this.i];
    if (c === '"' || c === "'") {
      let out = '';
      // Adjacent string literals concatenate, as in the text format.
      while (this.s[this.i] === '"' || this.s[this.i] === "'") {
        const quote = this.s[this.i]!;
        let j = this.i + 1;
        while (j < this.s.length && this.s[j] !== quote) j += this.s[j] === '\\' ? 2 : 1;
        if (j >= this.s.length) this.fail('unterminated string');
        out += this.s.slice(this.i + 1, j).replace(/\\(.)/g, '$1');
        this.i = j + 1;
        this.skip();
      }
      return out;
    }
    const m = /^-?[0-9][0-9.eE+-]*|^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.i, this.i + 256));
    if (!m) this.fail('expected a value');
    this.i += m[0].length;
    const n = Number(m[0]);
    return Number.isNaN(n) ? m[0] : n;
  }
}

function messages(msg: Message, name: string): Array<[Message, number]> {
  return msg.fields.filter(([k, v]) => k === name && typeof v === 'object').map(([, v, line]) => [v as Message, line]);
}

function only(msg: Message, allowed: readonly string[], where: string, file: string): void {
  for (const [k, , line] of msg.fields) {
    if (!allowed.includes(k)) throw new UsageError(`${file}: line ${line}: ${where} has no field ${k} modelbridge serve reads (expected: ${allowed.join(', ')})`);
  }
}

function scalar(msg: Message, name: string): string | number | undefined {
  const f = msg.fields.filter(([k]) => k === name);
  const last = f[f.length - 1];
  return last && typeof last[1] !== 'object' ? last[1] : undefined;
}

/** Reads a model config file (TF Serving's text format). */
export function readModelConfig(path: string): ModelConfig[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read --model-config ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const top = new TextFormat(text, path).message(true);
  only(top, ['model_config_list'], 'ModelServerConfig', path);
  const list = messages(top, 'model_config_list');
  if (list.length !== 1) throw new UsageError(`${path}: expected one model_config_list { config { name: ... base_path: ... } }`);
  const [configList] = list[0]!;
  only(configList, ['config'], 'model_config_list', path);
  const configs = messages(configList, 'config').map(([c, line]) => modelConfig(c, line, path));
  if (configs.length === 0) throw new UsageError(`${path}: model_config_list has no config`);
  const names = new Set<string>();
  for (const c of configs) {
    if (names.has(c.name)) throw new UsageError(`${path}: model name ${JSON.stringify(c.name)} is configured twice`);
    names.add(c.name);
  }
  return configs;
}

function modelConfig(c: Message, line: number, file: string): ModelConfig {
  only(c, ['name', 'base_path', 'model_platform', 'model_version_policy', 'version_labels', 'model_type'], 'config', file);
  const name = scalar(c, 'name');
  const base = scalar(c, 'base_path');
  if (typeof name !== 'string' || name === '' || /[/:]/.test(name)) throw new UsageError(`${file}: line ${line}: config needs a name (a non-empty string without / or :)`);
  if (typeof base !== 'string' || base === '') throw new UsageError(`${file}: line ${line}: config ${name} needs a base_path`);
  const basePath = isAbsolute(base) ? base : resolve(dirname(path(file)), base);
  let policy: VersionPolicy = DEFAULT_POLICY;
  const policies = messages(c, 'model_version_policy');
  if (policies.length > 0) {
    const [p, pline] = policies[policies.length - 1]!;
    only(p, ['latest', 'all', 'specific'], 'model_version_policy', file);
    const [kind, body] = p.fields[0] ?? [];
    if (p.fields.length !== 1 || typeof body !== 'object') throw new UsageError(`${file}: line ${pline}: model_version_policy needs one of latest { num_versions: N }, all {}, specific { versions: V }`);
    if (kind === 'all') policy = { kind: 'all' };
    else if (kind === 'latest') {
      const n = scalar(body, 'num_versions') ?? 1;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new UsageError(`${file}: line ${pline}: num_versions must be a whole number >= 1`);
      policy = { kind: 'latest', count: n };
    } else {
      const versions = body.fields.filter(([k]) => k === 'versions').map(([, v]) => v);
      if (versions.length === 0 || !versions.every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) {
        throw new UsageError(`${file}: line ${pline}: specific needs versions: N (whole numbers)`);
      }
      policy = { kind: 'specific', versions: versions as number[] };
    }
  }
  const labels = new Map<string, number>();
  for (const [l, lline] of messages(c, 'version_labels')) {
    const key = scalar(l, 'key');
    const value = scalar(l, 'value');
    if (typeof key !== 'string' || typeof value !== 'number' || !Number.isSafeInteger(value)) throw new UsageError(`${file}: line ${lline}: version_labels needs key: "LABEL" value: VERSION`);
    labels.set(key, value);
  }
  return { name, basePath, policy, labels };
}

function path(file: string): string {
  return resolve(file);
}
