/** TorchScript programs (torch.jit.save archives) read with their computation: code parsed, never executed. */
export { openScriptArchive, isScriptArchive, type ScriptArchive } from './archive.js';
export { lowerScript, type LoweredProgram } from './lower.js';
export { parseSource, tokenize, SyntaxProblem, MAX_DEPTH, MAX_SOURCE_BYTES, MAX_TOKENS, type SourceFile } from './syntax.js';
export { SCRIPT_SCHEMAS } from './schemas.js';
export { readTorchScript, describeTorchScript } from './reader.js';
