// Maps every failure, ours and Fastify's own, to the JSON error body of SPEC §2.2; no stack or SQL leaks.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, ERROR_STATUS, type ErrorCode, UnavailableError } from '../../core/errors.js';

export interface ErrorBody {
  error: string;
  code: ErrorCode;
}

/** Renders an error for one request; TAXII routes replace this to send the TAXII error resource. */
export type ErrorRenderer = (request: FastifyRequest, reply: FastifyReply, error: ApiError) => unknown;

export const renderJsonError: ErrorRenderer = (_request, reply, error) => {
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return reply.status(error.status).send({ error: error.message, code: error.code } satisfies ErrorBody);
};

function describeValidation(error: FastifyError): { message: string; parameter?: string } {
  const first = error.validation?.[0];
  if (!first) return { message: error.message };
  const params = first.params as Record<string, unknown>;
  const path = first.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const parameter =
    typeof params.missingProperty === 'string'
      ? params.missingProperty
      : typeof params.additionalProperty === 'string'
        ? params.additionalProperty
        : path || undefined;
  const where = error.validationContext ?? 'request';
  const message = parameter
    ? `Invalid ${where} parameter "${parameter}": ${first.message ?? 'invalid value'}.`
    : `Invalid ${where}: ${first.message ?? 'invalid value'}.`;
  return parameter ? { message, parameter } : { message };
}

/** Converts anything thrown during a request into an ApiError with a catalogue code. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const { message, parameter } = describeValidation(fastifyError);
    return new ApiError('invalid_parameter', message, parameter);
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('payload_too_large', 'The request body is too large.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('unsupported_media_type', 'This content type is not accepted here.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('invalid_parameter', 'The JSON body is empty.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('invalid_parameter', 'The request body is not valid JSON.');
    default:
      break;
  }
  if (error instanceof SyntaxError || fastifyError.statusCode === 400) {
    return new ApiError('invalid_parameter', 'The request body could not be parsed.');
  }
  if (fastifyError.statusCode === 413)
    return new ApiError('payload_too_large', 'The request body is too large.');
  if (fastifyError.statusCode === 415)
    return new ApiError('unsupported_media_type', 'This content type is not accepted here.');
  if (fastifyError.statusCode === 404) return new ApiError('not_found', 'Not found.');
  if (isUnavailable(error))
    return new ApiError(
      'service_unavailable',
      'The service is temporarily unavailable; retry shortly.',
      undefined,
      { 'Retry-After': '1' },
    );
  return new ApiError('internal_error', 'An internal error occurred.');
}

// Database or cache connections that are down: answer 503 fast instead of 500 (SPEC §2.2, issue on outages).
function isUnavailable(error: unknown): boolean {
  if (error instanceof UnavailableError) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (
      [
        'ECONNREFUSED',
        'ECONNRESET',
        'ETIMEDOUT',
        'EPIPE',
        'SQLITE_BUSY',
        'SQLITE_LOCKED',
        '57P01',
        '57P03',
        '08006',
        '08001',
        '08003',
      ].includes(code)
    ) {
      return true;
    }
  }
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Connection is closed|Stream isn't writeable|database is locked|not queryable|the database system is (starting up|shutting down)/i.test(
    message,
  );
}

export function registerErrorHandling(
  app: FastifyInstance,
  renderFor: (request: FastifyRequest) => ErrorRenderer,
) {
  app.setErrorHandler((error, request, reply) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500) {
      request.log.error({ err: error }, 'request failed');
    }
    return renderFor(request)(request, reply, apiError);
  });
  app.setNotFoundHandler((request, reply) => {
    const apiError = new ApiError(
      'not_found',
      `No route for ${request.method} ${request.url.split('?')[0]}.`,
    );
    return renderFor(request)(request, reply, apiError);
  });
}

export { ERROR_STATUS };
