// Request body limits shared by the app and the routes that accept large bodies.

/** Largest body any route accepts (bulk CSV, SPEC §3.4); routes set smaller limits of their own. */
export const MAX_BODY_BYTES = 2 * 1024 * 1024;
