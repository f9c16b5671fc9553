/** The graph_module.metadata key where modelbridge's .pt2 writer keeps names torch could not take as they were. */
export const NAMES_KEY = 'modelbridge.names';
