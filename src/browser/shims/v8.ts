/** node:v8 for the browser bundle: engine flags cannot be set from a page (relaxed SIMD is on in current Chromium). */
export function setFlagsFromString(): void {}
