import { isSafetensorsDType, SAFETENSORS_DTYPES, type SafetensorsDType } from './dtypes.js';

/**
 * A parser for exactly the JSON a safetensors header may hold, written instead of JSON.parse
 * because JSON.parse is too lenient for a file format that must reject what the reference
 * (serde_json into typed structs) rejects: it keeps the last of duplicate keys, turns 1.0 and
 * 1e0 into integers, rounds integers beyond 2^53 and accepts lone UTF-16 surrogates.
 * Being schema-directed it also never recurses more than three levels, whatever the input.
 *
 * Integers are returned as bigint so that values up to 2^64-1 (the reference's usize) are exact
 * and the overflow rules can be applied as the reference applies them.
 */

export interface RawEntry {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly bigint[];
  readonly begin: bigint;
  readonly end: bigint;
}

export interface RawHeader {
  readonly metadata: Record<string, string> | undefined;
  /** In the order they appear in the header. */
  readonly entries: RawEntry[];
}

/** Reports a syntax or schema error at a UTF-16 position of the header text. */
export type Fail = (at: number, expected: string) => never;

const U64_MAX = (1n << 64n) - 1n;
const METADATA_KEY = '__metadata__';
const ENTRY_FIELDS = ['dtype', 'shape', 'data_offsets'] as const;
/** A UTF-16 surrogate not part of a pair (with the u flag, pairs match as one code point). */
const LONE_SURROGATE = /\p{Surrogate}/u;
/** A JSON number token (sticky: matched at a given position). */
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

export function parseHeaderJson(text: string, fail: Fail): RawHeader {
  return new Scanner(text, fail).header();
}

class Scanner {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly fail: Fail,
  ) {}

  header(): RawHeader {
    let metadata: Record<string, string> | undefined;
    let sawMetadata = false;
    const entries: RawEntry[] = [];
    const names = new Set<string>();
    this.expect('{', 'a JSON object');
    this.members((key, keyAt) => {
      if (key === METADATA_KEY) {
        if (sawMetadata) this.fail(keyAt, `${METADATA_KEY} only once`);
        sawMetadata = true;
        metadata = this.metadata();
        return;
      }
      // The reference keeps the last of duplicate names; a name meaning two things is rejected here.
      if (names.has(key)) this.fail(keyAt, `tensor name ${JSON.stringify(key)} only once`);
      names.add(key);
      entries.push(this.entry(key));
    });
    this.skipWhitespace();
    if (this.pos !== this.text.length) this.fail(this.pos, 'nothing after the header object but whitespace');
    return { metadata, entries };
  }

  /** `{"key": "value", ...}` or null (the reference's Option<HashMap<String, String>>). */
  private metadata(): Record<string, string> | undefined {
    this.skipWhitespace();
    if (this.text.startsWith('null', this.pos)) {
      this.pos += 4;
      return undefined;
    }
    this.expect('{', `${METADATA_KEY} as an object of strings`);
    const out: Record<string, string> = {};
    this.members((key, keyAt) => {
      if (Object.prototype.hasOwnProperty.call(out, key)) this.fail(keyAt, `metadata key ${JSON.stringify(key)} only once`);
      this.skipWhitespace();
      if (this.text[this.pos] !== '"') this.fail(this.pos, `metadata value of ${JSON.stringify(key)} as a string`);
      // defineProperty, not assignment: a key named __proto__ must become a plain entry.
      Object.defineProperty(out, key, { value: this.string(), enumerable: true, writable: true, configurable: true });
    });
    return out;
  }

  /** `{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}` and nothing else. */
  private entry(name: string): RawEntry {
    this.skipWhitespace();
    this.expect('{', `tensor ${JSON.stringify(name)} as an object {dtype, shape, data_offsets}`);
    let dtype: SafetensorsDType | undefined;
    let shape: bigint[] | undefined;
    let offsets: bigint[] | undefined;
    const seen = new Set<string>();
    this.members((key, keyAt) => {
      if (!(ENTRY_FIELDS as readonly string[]).includes(key)) {
        this.fail(keyAt, `only dtype, shape and data_offsets in tensor ${JSON.stringify(name)}, not ${JSON.stringify(key)}`);
      }
      if (seen.has(key)) this.fail(keyAt, `${key} only once in tensor ${JSON.stringify(name)}`);
      seen.add(key);
      this.skipWhitespace();
      if (key === 'dtype') {
        const at = this.pos;
        if (this.text[at] !== '"') this.fail(at, 'dtype as a string');
        const code = this.string();
        if (!isSafetensorsDType(code)) this.fail(at, `a dtype among ${SAFETENSORS_DTYPES.join(', ')}, not ${JSON.stringify(code)}`);
        dtype = code;
      } else if (key === 'shape') {
        shape = this.integers('shape');
      } else {
        const at = this.pos;
        offsets = this.integers('data_offsets');
        if (offsets.length !== 2) this.fail(at, 'data_offsets as exactly two integers [begin, end]');
      }
    });
    if (dtype === undefined || shape === undefined || offsets === undefined) {
      this.fail(this.pos - 1, `dtype, shape and data_offsets in tensor ${JSON.stringify(name)}`);
    }
    return { name, dtype, shape, begin: offsets[0]!, end: offsets[1]! };
  }

  /** `[int, int, ...]` of unsigned integers that fit in 64 bits. */
  private integers(what: string): bigint[] {
    this.expect('[', `${what} as an array of integers`);
    const out: bigint[] = [];
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipWhitespace();
      out.push(this.unsigned(what));
      this.skipWhitespace();
      const c = this.text[this.pos];
      if (c === ']') {
        this.pos++;
        return out;
      }
      if (c !== ',') this.fail(this.pos, `',' or ']' in ${what}`);
      this.pos++;
    }
  }

  private unsigned(what: string): bigint {
    const at = this.pos;
    NUMBER.lastIndex = at;
    const token = NUMBER.exec(this.text)?.[0];
    if (!token) this.fail(at, `an integer in ${what}`);
    this.pos += token.length;
    // serde reads these as negative or floating-point numbers, which a usize field refuses.
    if (!/^[0-9]+$/.test(token)) this.fail(at, `a non-negative integer without fraction or exponent in ${what}, not ${token}`);
    // More than 20 digits cannot fit in 64 bits; checking first avoids a huge BigInt conversion.
    const value = token.length > 20 ? U64_MAX + 1n : BigInt(token);
    if (value > U64_MAX) this.fail(at, `an integer below 2^64 in ${what}`);
    return value;
  }

  /** Calls `member` for each `"key": value` of an object whose `{` was just consumed. */
  private members(member: (key: string, keyAt: number) => void): void {
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return;
    }
    for (;;) {
      this.skipWhitespace();
      const keyAt = this.pos;
      if (this.text[keyAt] !== '"') this.fail(keyAt, 'a quoted key');
      const key = this.string();
      this.skipWhitespace();
      this.expect(':', `':' after key ${JSON.stringify(key)}`);
      member(key, keyAt);
      this.skipWhitespace();
      const c = this.text[this.pos];
      if (c === '}') {
        this.pos++;
        return;
      }
      if (c !== ',') this.fail(this.pos, "',' or '}'");
      this.pos++;
    }
  }

  /**
   * A JSON string starting at the current `"`. Strings with escapes are decoded by JSON.parse
   * (fast, and strict about escape syntax); what it lets through that serde_json refuses, an
   * escaped lone surrogate, is checked after. The text itself has none: it came from strict UTF-8.
   */
  private string(): string {
    const start = this.pos;
    let escaped = false;
    let end = start + 1;
    for (;;) {
      if (end >= this.text.length) this.fail(start, 'a closing quote');
      const c = this.text.charCodeAt(end);
      if (c === 0x22) break;
      if (c < 0x20) this.fail(end, 'no raw control characters in a string (escape them)');
      if (c === 0x5c) {
        escaped = true;
        end++;
      }
      end++;
    }
    this.pos = end + 1;
    if (!escaped) return this.text.slice(start + 1, end);
    let value: unknown;
    try {
      value = JSON.parse(this.text.slice(start, end + 1));
    } catch {
      this.fail(start, 'a string with valid escapes (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)');
    }
    if (LONE_SURROGATE.test(value as string)) this.fail(start, 'a string without lone surrogate escapes (not valid Unicode)');
    return value as string;
  }

  private expect(c: string, expected: string): void {
    this.skipWhitespace();
    if (this.text[this.pos] !== c) this.fail(this.pos, expected);
    this.pos++;
  }

  /** JSON whitespace only (space, tab, LF, CR): serde_json refuses form feeds and BOMs. */
  private skipWhitespace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      this.pos++;
    }
  }
}
