/** Field manager recorded in managedFields for the sidecar's writes. */
export const FIELD_MANAGER = 'arc-sidecar';
