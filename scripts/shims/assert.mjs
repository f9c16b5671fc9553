// A start-up friendly stand-in for `assert` inside the CLI bundle (esbuild aliases it here; see
// scripts/build.mjs). Only yargs imports it, for two checks that hold on every ordinary run;
// loading node:assert costs a millisecond or two of every start. Each check here does what
// node:assert's would (Object.is, as strictEqual compares) and hands a failing one to node:assert
// itself, so the same AssertionError is thrown.
export function strictEqual(actual, expected, message) {
  if (!Object.is(actual, expected)) require('node:assert').strictEqual(actual, expected, message);
}

export function notStrictEqual(actual, expected, message) {
  if (Object.is(actual, expected)) require('node:assert').notStrictEqual(actual, expected, message);
}
