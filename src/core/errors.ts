// The error catalogue: stable wire codes and their HTTP statuses (SPEC §2.2). Never branch on message text.

export const ERROR_STATUS = {
  invalid_ip: 400,
  invalid_parameter: 400,
  ip_not_public: 400,
  ip_protected: 400,
  missing_api_key: 401,
  invalid_api_key: 401,
  key_disabled: 403,
  key_expired: 403,
  forbidden: 403,
  quota_exceeded: 429,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_rows: 413,
  alert_limit_reached: 403,
  range_too_large: 400,
  not_found: 404,
  method_not_allowed: 405,
  not_acceptable: 406,
  service_unavailable: 503,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** An expected failure, returned by services as a value and turned into the wire body by the HTTP layer. */
export interface Failure {
  readonly ok: false;
  readonly code: ErrorCode;
  readonly message: string;
  /** The request parameter at fault, when there is one. */
  readonly parameter?: string;
}

export function failure(code: ErrorCode, message: string, parameter?: string): Failure {
  return parameter === undefined ? { ok: false, code, message } : { ok: false, code, message, parameter };
}

/** Thrown inside the HTTP layer to end a request with a catalogue error. */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly parameter?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = ERROR_STATUS[code];
  }

  static from(failure: Failure, headers?: Record<string, string>): ApiError {
    return new ApiError(failure.code, failure.message, failure.parameter, headers);
  }
}

/**
 * A dependency (database, Redis) is unreachable or did not answer in time. The HTTP layer answers 503
 * `service_unavailable`; nothing the request asked for was done (SPEC §2.2, §13).
 */
export class UnavailableError extends Error {
  constructor(
    readonly dependency: string,
    options?: { cause?: unknown },
  ) {
    super(`${dependency} is unavailable`, options);
    this.name = 'UnavailableError';
  }
}
