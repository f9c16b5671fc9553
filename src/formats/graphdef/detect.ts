/**
 * Recognises a serialized GraphDef from its first bytes. TensorFlow writes fields in number
 * order, so a graph with nodes opens with field 1 (node, a message), whose own first field is
 * the node name (field 1) followed by the op (field 2). Both must look like TF names as far as
 * the head shows them. A SavedModel opens with its schema version (a varint) instead.
 */
export function looksLikeGraphDef(head: Uint8Array): boolean {
  let at = 0;
  const varint = (): number | undefined => {
    let v = 0;
    for (let shift = 0; shift < 35 && at < head.length; shift += 7) {
      const b = head[at++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
    return undefined;
  };
  const text = (pattern: RegExp): boolean | undefined => {
    const len = varint();
    if (len === undefined || len === 0) return false;
    const bytes = head.subarray(at, Math.min(head.length, at + len));
    at += len;
    return pattern.test(String.fromCharCode(...bytes)) ? at <= head.length || undefined : false;
  };
  if (head[at++] !== 0x0a || varint() === undefined || head[at++] !== 0x0a) return false;
  const name = text(/^[A-Za-z0-9.][A-Za-z0-9_./>-]*$/);
  if (name !== true) return name === undefined;
  if (at >= head.length) return true;
  if (head[at++] !== 0x12) return false;
  return text(/^[A-Za-z_][A-Za-z0-9_]*$/) !== false;
}
