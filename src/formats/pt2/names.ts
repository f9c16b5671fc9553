/** The graph_module.metadata key where modelbridge's .pt2 writer keeps names torch could not take as they were. */
export const NAMES_KEY = 'modelbridge.names';
/** The graph_module.metadata key holding the model's string metadata (module spec and signature included), as JSON. */
export const METADATA_KEY = 'modelbridge.metadata';
