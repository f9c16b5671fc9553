/**
 * Names and paths reach the terminal from files and command lines we do not control: a tensor
 * named "x\n\u001b]0;owned\u0007" would otherwise split an error over two lines or retitle the
 * user's window. Every message and table cell goes through `escapeControl`, which keeps printable
 * text as it is and spells out the rest the way JavaScript string literals do.
 */

// C0 controls, DEL, C1 controls (U+009B is a one-character CSI on some terminals), and the
// Unicode bidirectional overrides and isolates that reorder what the reader sees.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u001b': '\\e' };

function spell(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** The text with every control character escaped: safe to print as (part of) one line. */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE, spell);
}
