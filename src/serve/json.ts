/**
 * Request JSON as TF Serving reads it. TF Serving parses with rapidjson's kParseNanAndInfFlag
 * (so `NaN`, `Infinity` and `-Infinity` are numbers) and kParseStopWhenDoneFlag (text after the
 * top-level value is ignored), and reports a bad document as `JSON Parse error: <rapidjson's
 * English message> at offset: N` (tensorflow_serving/util/json_tensor.cc, ParseJson).
 *
 * JSON.parse is the fast path; it accepts a strict subset of what TF Serving accepts, so only a
 * document JSON.parse refuses goes through the small parser below. That parser is written here,
 * not taken from a library, because no maintained JSON library gives both the non-finite tokens
 * and rapidjson's error messages and offsets, which clients and TF Serving's own tests match on.
 */
import { invalidArgument } from './status.js';

/** rapidjson's GetParseError_En texts for the errors a hand-typed document can have. */
const MESSAGE = {
  empty: 'The document is empty.',
  value: 'Invalid value.',
  name: 'Missing a name for object member.',
  colon: 'Missing a colon after a name of object member.',
  objectComma: "Missing a comma or '}' after an object member.",
  arrayComma: "Missing a comma or ']' after an array element.",
  hex: 'Incorrect hex digit after \\u escape in string.',
  surrogate: 'The surrogate pair in string is invalid.',
  escape: 'Invalid escape character in string.',
  quote: 'Missing a closing quotation mark in string.',
  encoding: 'Invalid encoding in string.',
  fraction: 'Miss fraction part in number.',
  exponent: 'Miss exponent in number.',
} as const;

class ParseFailure {
  constructor(
    readonly message: string,
    readonly offset: number,
  ) {}
}

/** The body as TF Serving parses it; throws INVALID_ARGUMENT with TF Serving's message otherwise. */
export function parseRequestBody(text: string): unknown {
  if (text.length === 0) throw invalidArgument('JSON Parse error: The document is empty');
  try {
    return JSON.parse(text);
  } catch {
    // Not strict JSON: NaN/Infinity, trailing text, or a real error (with rapidjson's words).
  }
  try {
    return new Parser(text).document();
  } catch (error) {
    if (error instanceof ParseFailure) throw invalidArgument(`JSON Parse error: ${error.message} at offset: ${error.offset}`);
    throw error;
  }
}

/** Nesting deeper than this is refused rather than recursed into (a stack overflow is no answer). */
const MAX_DEPTH = 512;

class Parser {
  private i = 0;

  constructor(private readonly s: string) {}

  document(): unknown {
    this.space();
    if (this.i >= this.s.length) throw new ParseFailure(MESSAGE.empty, this.i);
    return this.value(0);
    // kParseStopWhenDoneFlag: whatever follows the root value is not read.
  }

  private fail(message: string, at = this.i): never {
    throw new ParseFailure(message, at);
  }

  private space(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.i++;
      else break;
    }
  }

  private value(depth: number): unknown {
    if (depth > MAX_DEPTH) this.fail(MESSAGE.value);
    const c = this.s[this.i];
    switch (c) {
      case '{':
        return this.object(depth);
      case '[':
        return this.array(depth);
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      case 'N':
        return this.literal('NaN', NaN);
      case 'I':
        return this.literal('Infinity', Infinity);
      default:
        return this.number();
    }
  }

  private literal<T>(word: string, value: T): T {
    if (this.s.startsWith(word, this.i)) {
      this.i += word.length;
      return value;
    }
    return this.fail(MESSAGE.value);
  }

  private object(depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.i++;
    this.space();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      if (this.s[this.i] !== '"') this.fail(MESSAGE.name);
      const key = this.string();
      this.space();
      if (this.s[this.i] !== ':') this.fail(MESSAGE.colon);
      this.i++;
      this.space();
      const v = this.value(depth + 1);
      // A key named __proto__ is data, not the object's prototype.
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.space();
      const c = this.s[this.i];
      if (c === ',') {
        this.i++;
        this.space();
      } else if (c === '}') {
        this.i++;
        return out;
      } else this.fail(MESSAGE.objectComma);
    }
  }

  private array(depth: number): unknown[] {
    const out: unknown[] = [];
    this.i++;
    this.space();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.space();
      const c = this.s[this.i];
      if (c === ',') {
        this.i++;
        this.space();
      } else if (c === ']') {
        this.i++;
        return out;
      } else this.fail(MESSAGE.arrayComma);
    }
  }

  private string(): string {
    const s = this.s;
    const start = ++this.i;
    let out = '';
    let run = start;
    for (;;) {
      if (this.i >= s.length) this.fail(MESSAGE.quote, start - 1);
      const c = s.charCodeAt(this.i);
      if (c === 0x22) {
        out += s.slice(run, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) this.fail(MESSAGE.encoding);
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      out += s.slice(run, this.i);
      const e = s[this.i + 1];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e !== undefined && simple[e] !== undefined) {
        out += simple[e];
        this.i += 2;
      } else if (e === 'u') {
        const unit = this.hex4(this.i + 2);
        this.i += 6;
        if (unit >= 0xd800 && unit <= 0xdbff) {
          if (s[this.i] !== '\\' || s[this.i + 1] !== 'u') this.fail(MESSAGE.surrogate);
          const low = this.hex4(this.i + 2);
          if (low < 0xdc00 || low > 0xdfff) this.fail(MESSAGE.surrogate);
          this.i += 6;
          out += String.fromCharCode(unit, low);
        } else out += String.fromCharCode(unit);
      } else this.fail(MESSAGE.escape, this.i + 1);
      run = this.i;
    }
  }

  private hex4(at: number): number {
    const h = this.s.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) this.fail(MESSAGE.hex, at);
    return parseInt(h, 16);
  }

  private number(): number {
    const s = this.s;
    const start = this.i;
    if (s[this.i] === '-') {
      this.i++;
      if (s.startsWith('Infinity', this.i)) {
        this.i += 8;
        return -Infinity;
      }
    }
    const digits = () => {
      const from = this.i;
      while (this.i < s.length && s.charCodeAt(this.i) >= 0x30 && s.charCodeAt(this.i) <= 0x39) this.i++;
      return this.i - from;
    };
    if (s[this.i] === '0') this.i++;
    else if (digits() === 0) this.fail(MESSAGE.value, start);
    if (s[this.i] === '.') {
      this.i++;
      if (digits() === 0) this.fail(MESSAGE.fraction);
    }
    if (s[this.i] === 'e' || s[this.i] === 'E') {
      this.i++;
      if (s[this.i] === '+' || s[this.i] === '-') this.i++;
      if (digits() === 0) this.fail(MESSAGE.exponent);
    }
    return Number(s.slice(start, this.i));
  }
}

/** rapidjson's JsonTypeString names, for TF Serving's type errors. */
export function jsonTypeString(v: unknown): string {
  if (v === null) return 'Null';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (Array.isArray(v)) return 'Array';
  if (typeof v === 'object') return 'Object';
  if (typeof v === 'string') return 'String';
  return 'Number';
}

/**
 * A value as it appears in TF Serving's messages (JsonValueToDebugString: at most 256 bytes),
 * kept on one line: non-finite numbers spelled as TF Serving reads them.
 */
export function debugString(v: unknown): string {
  const text = JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? `\uE000${x}\uE000` : x)) ?? String(v);
  const plain = text.replace(/"\uE000(NaN|Infinity|-Infinity)\uE000"/g, '$1');
  return plain.length > 256 ? plain.slice(0, 256) : plain;
}
