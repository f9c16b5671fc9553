/**
 * TF Serving's errors: a canonical status code (absl::StatusCode) and a message; the REST layer
 * turns the code into an HTTP status with the same table as tensorflow_serving/model_servers/
 * http_server.cc (ToHTTPStatusCode) and the message into `{"error": "..."}` (json_tensor.cc,
 * MakeJsonFromStatus).
 */
export type StatusCode =
  | 'CANCELLED'
  | 'UNKNOWN'
  | 'INVALID_ARGUMENT'
  | 'DEADLINE_EXCEEDED'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'FAILED_PRECONDITION'
  | 'ABORTED'
  | 'OUT_OF_RANGE'
  | 'UNIMPLEMENTED'
  | 'INTERNAL'
  | 'UNAVAILABLE'
  | 'DATA_LOSS'
  | 'UNAUTHENTICATED';

/** http_server.cc's ToHTTPStatusCode, code for code. */
const HTTP: Readonly<Record<StatusCode, number>> = {
  CANCELLED: 499,
  UNKNOWN: 500,
  INVALID_ARGUMENT: 400,
  DEADLINE_EXCEEDED: 504,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 400,
  ABORTED: 409,
  OUT_OF_RANGE: 400,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DATA_LOSS: 500,
  UNAUTHENTICATED: 401,
};

export function httpStatusOf(code: StatusCode): number {
  return HTTP[code];
}

/** A request the server answers with an error status (never a crash, never a closed connection). */
export class ServeError extends Error {
  override readonly name = 'ServeError';

  constructor(
    readonly code: StatusCode,
    message: string,
  ) {
    super(message);
  }

  get httpStatus(): number {
    return HTTP[this.code];
  }
}

export const invalidArgument = (message: string): ServeError => new ServeError('INVALID_ARGUMENT', message);
