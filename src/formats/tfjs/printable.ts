/** No control characters: every name a model.json holds may end up in a one-line error message. */
export function printable(s: string): boolean {
  return !/[\u0000-\u001f\u007f]/.test(s);
}
