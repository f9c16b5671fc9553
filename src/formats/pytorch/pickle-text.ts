/**
 * The text decodings pickle opcodes need, done the way CPython does them: UTF-8 with lone
 * surrogates allowed ("surrogatepass"), Python 2 string escapes, raw-unicode-escape, and the
 * int() / float() parsing of protocol 0's decimal arguments.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 as Python decodes pickled str (surrogatepass); undefined when not valid. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return decodeSurrogatepass(bytes);
  }
}

/** The slow path: well-formed UTF-8 where ED A0-BF xx (a lone surrogate) is allowed. */
function decodeSurrogatepass(b: Uint8Array): string | undefined {
  const units: number[] = [];
  let out = '';
  const cont = (i: number): number => (i < b.byteLength && (b[i]! & 0xc0) === 0x80 ? b[i]! & 0x3f : -1);
  for (let i = 0; i < b.byteLength; ) {
    const c = b[i]!;
    let cp: number;
    let n: number;
    if (c < 0x80) [cp, n] = [c, 1];
    else if (c >= 0xc2 && c < 0xe0) [cp, n] = [((c & 0x1f) << 6) | cont(i + 1), 2];
    else if (c >= 0xe0 && c < 0xf0) [cp, n] = [((c & 0x0f) << 12) | (cont(i + 1) << 6) | cont(i + 2), 3];
    else if (c >= 0xf0 && c < 0xf5) [cp, n] = [((c & 0x07) << 18) | (cont(i + 1) << 12) | (cont(i + 2) << 6) | cont(i + 3), 4];
    else return undefined;
    for (let k = 1; k < n; k++) if (cont(i + k) < 0) return undefined;
    // Overlong forms and values beyond U+10FFFF are invalid even with surrogatepass.
    if ((n === 3 && cp < 0x800) || (n === 4 && (cp < 0x10000 || cp > 0x10ffff))) return undefined;
    if (cp >= 0x10000) units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
    else units.push(cp);
    i += n;
    if (units.length >= 4096) {
      out += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  return out + String.fromCharCode(...units);
}

/** UTF-8 as Python encodes str with surrogatepass: lone surrogates become 3-byte sequences. */
export function encodeUtf8(text: string): Uint8Array {
  if (!/\p{Surrogate}/u.test(text)) return new TextEncoder().encode(text);
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    const next = text.charCodeAt(i + 1);
    if (cp >= 0xd800 && cp < 0xdc00 && next >= 0xdc00 && next < 0xe000) {
      cp = 0x10000 + ((cp - 0xd800) << 10) + (next - 0xdc00);
      i++;
    }
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  }
  return Uint8Array.from(out);
}

const SIMPLE_ESCAPES: Readonly<Record<number, number>> = {
  0x5c: 0x5c, // \\
  0x27: 0x27, // \'
  0x22: 0x22, // \"
  0x61: 0x07, // \a
  0x62: 0x08, // \b
  0x66: 0x0c, // \f
  0x6e: 0x0a, // \n
  0x72: 0x0d, // \r
  0x74: 0x09, // \t
  0x76: 0x0b, // \v
};

const hexValue = (c: number | undefined): number => {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
};

/** codecs.escape_decode: the body of a protocol 0 STRING; undefined on a bad \x escape. */
export function decodeEscapedBytes(b: Uint8Array): Uint8Array | undefined {
  const out = new Uint8Array(b.byteLength);
  let n = 0;
  for (let i = 0; i < b.byteLength; i++) {
    const c = b[i]!;
    if (c !== 0x5c || i + 1 >= b.byteLength) {
      out[n++] = c;
      continue;
    }
    const e = b[++i]!;
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) out[n++] = simple;
    else if (e === 0x0a) continue; // backslash-newline: a line continuation
    else if (e >= 0x30 && e <= 0x37) {
      let v = e - 0x30;
      for (let k = 0; k < 2 && i + 1 < b.byteLength && b[i + 1]! >= 0x30 && b[i + 1]! <= 0x37; k++) v = v * 8 + (b[++i]! - 0x30);
      out[n++] = v & 0xff;
    } else if (e === 0x78) {
      const hi = hexValue(b[i + 1]);
      const lo = hexValue(b[i + 2]);
      if (hi < 0 || lo < 0) return undefined;
      out[n++] = hi * 16 + lo;
      i += 2;
    } else {
      out[n++] = 0x5c;
      out[n++] = e;
    }
  }
  return out.slice(0, n);
}

/** raw-unicode-escape (protocol 0 UNICODE): latin-1 bytes plus \uXXXX and \UXXXXXXXX. */
export function decodeRawUnicodeEscape(b: Uint8Array): string | undefined {
  let out = '';
  for (let i = 0; i < b.byteLength; i++) {
    const c = b[i]!;
    if (c !== 0x5c || i + 1 >= b.byteLength || (b[i + 1] !== 0x75 && b[i + 1] !== 0x55)) {
      out += String.fromCharCode(c);
      if (c === 0x5c && i + 1 < b.byteLength) out += String.fromCharCode(b[++i]!);
      continue;
    }
    const count = b[i + 1] === 0x75 ? 4 : 8;
    let cp = 0;
    for (let k = 0; k < count; k++) {
      const v = hexValue(b[i + 2 + k]);
      if (v < 0) return undefined;
      cp = cp * 16 + v;
    }
    if (cp > 0x10ffff) return undefined;
    out += String.fromCodePoint(cp);
    i += 1 + count;
  }
  return out;
}

/** int(text, 0) as protocol 0 INT / LONG arguments need; LONG may end in "L". */
export function parsePythonInt(raw: string, long: boolean): number | bigint | undefined {
  let s = raw.trim();
  if (long && s.endsWith('L')) s = s.slice(0, -1);
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[0-9]+)$/.exec(s.replaceAll('_', ''));
  // Python refuses decimal strings of more than 4300 digits (sys.int_info.default_max_str_digits).
  if (!m || m[2]!.length > 4300) return undefined;
  let value = BigInt(m[2]!.replace(/^0+(?=\d)/, ''));
  if (m[1] === '-') value = -value;
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/** float(text) as the protocol 0 FLOAT argument needs. */
export function parsePythonFloat(raw: string): number | undefined {
  const s = raw.trim().toLowerCase();
  const special = /^([+-]?)(inf|infinity|nan)$/.exec(s);
  if (special) return special[2] === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(s.replaceAll('_', ''))) return undefined;
  return Number(s.replaceAll('_', ''));
}
