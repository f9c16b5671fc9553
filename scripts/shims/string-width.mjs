// A start-up friendly stand-in for the `string-width` package inside the CLI bundle (esbuild
// aliases it here; see scripts/build.mjs). The real package builds an Intl.Segmenter and
// Unicode-property regular expressions (RGI_Emoji among them) when it is loaded, which cost a
// large share of the CLI's start-up although yargs only measures strings when it prints help.
// Printable ASCII, which is all modelbridge's help is, takes a fast path; anything else is
// measured code point by code point with East Asian widths, combining marks counting zero.
import stripAnsi from 'strip-ansi';
import { eastAsianWidth } from 'get-east-asian-width';

let zeroWidth;

export default function stringWidth(string, options = {}) {
  if (typeof string !== 'string' || string.length === 0) return 0;
  const text = options.countAnsiEscapeCodes ? string : stripAnsi(string);
  if (/^[\x20-\x7e]*$/.test(text)) return text.length;
  zeroWidth ??= /^[\p{Mark}\p{Default_Ignorable_Code_Point}\p{Control}\p{Format}]$/u;
  let width = 0;
  for (const ch of text) {
    if (zeroWidth.test(ch)) continue;
    width += eastAsianWidth(ch.codePointAt(0), { ambiguousAsWide: options.ambiguousIsNarrow === false });
  }
  return width;
}
