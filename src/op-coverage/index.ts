export { coverageOps, coverageRow, coverageTable, staleReasons, unexplained, type Cell, type CoverageRow } from './table.js';
export { REASONS, TFLITE, type Reason, type ReasonColumn } from './reasons.js';
export { renderCoverage } from './render.js';
export { parseZooMatrix, renderZooMatrix, ZOO_TARGETS, type ZooCell, type ZooMatrix, type ZooTarget } from './zoo.js';
