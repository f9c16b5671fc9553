// The build inlines the version from package.json (scripts/build.mjs defines this name), so the
// CLI and the library report their own version wherever they are installed; reading a
// package.json at run time would find whichever project the process runs in.
declare const __MODELBRIDGE_VERSION__: string | undefined;

/** The modelbridge package's version, e.g. `0.1.0` (`0.0.0-source` when run from the TypeScript source). */
export const VERSION: string = typeof __MODELBRIDGE_VERSION__ === 'string' ? __MODELBRIDGE_VERSION__ : '0.0.0-source';
