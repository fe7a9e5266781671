// POST /v1/key/bulk-report — up to 10,000 reports as JSON, multipart CSV or a raw CSV body (SPEC §3.4; counter: reports).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../core/errors.js';
import { isReportCsvRowError, parseReportCsv, REPORT_CSV_MAX_ROWS } from '../../core/report-csv.js';
import type { BulkReportRow } from '../../services/bulk-report-service.js';
import type { RawReportFields } from '../../services/report-input.js';
import type { Services } from '../../services/services.js';
import { MAX_BODY_BYTES } from '../body-limits.js';
import { keyOf, requireKey } from '../plugins/auth.js';
import { setQuotaHeaders } from '../plugins/quota.js';

function tooManyRows(): ApiError {
  return new ApiError(
    'too_many_rows',
    `A bulk report holds at most ${REPORT_CSV_MAX_ROWS.toLocaleString('en')} rows; split the file.`,
  );
}

function payloadTooLarge(): ApiError {
  return new ApiError('payload_too_large', 'A bulk report body may be at most 2 MB; split the file.');
}

/** Turns CSV bytes into bulk rows, or throws the whole-request error (400, 413). */
function rowsFromCsv(bytes: Buffer): BulkReportRow[] {
  const parsed = parseReportCsv(bytes, { maxRows: REPORT_CSV_MAX_ROWS });
  if (!parsed.ok) {
    if (parsed.code === 'too_many_rows') throw tooManyRows();
    throw new ApiError('invalid_parameter', `The CSV cannot be read: ${parsed.error}`);
  }
  return parsed.rows.map((row) =>
    isReportCsvRowError(row)
      ? { row: row.row, ip: row.ip, error: row.error, code: row.code }
      : {
          row: row.row,
          fields: {
            ip: row.ip,
            categories: row.categories.length > 0 ? [...row.categories] : undefined,
            protocol: row.protocol,
            comment: row.comment,
            timestamp: row.timestamp,
          },
        },
  );
}

function rowsFromJson(body: unknown): BulkReportRow[] {
  const reports = (body as { reports?: unknown } | null)?.reports;
  if (!Array.isArray(reports)) {
    throw new ApiError(
      'invalid_parameter',
      'The JSON body must be {"reports": [{ip, category, …}, …]}.',
      'reports',
    );
  }
  if (reports.length > REPORT_CSV_MAX_ROWS) throw tooManyRows();
  return reports.map((item, index) =>
    item !== null && typeof item === 'object' && !Array.isArray(item)
      ? { row: index + 1, fields: item as RawReportFields }
      : {
          row: index + 1,
          ip: '',
          error: 'A report must be a JSON object.',
          code: 'invalid_parameter' as const,
        },
  );
}

/** Reads the CSV from a multipart body: the first part named `file` or `csv` (a file or a plain field). */
async function csvFromMultipart(request: FastifyRequest): Promise<Buffer> {
  for await (const part of request.parts({
    limits: { fileSize: MAX_BODY_BYTES, fieldSize: MAX_BODY_BYTES, files: 2, fields: 10 },
  })) {
    if (part.fieldname !== 'file' && part.fieldname !== 'csv') {
      if (part.type === 'file') part.file.resume();
      continue;
    }
    if (part.type === 'file') {
      const bytes = await part.toBuffer().catch((error: { code?: string }) => {
        if (error.code === 'FST_REQ_FILE_TOO_LARGE') throw payloadTooLarge();
        throw error;
      });
      if (part.file.truncated) throw payloadTooLarge();
      return bytes;
    }
    return Buffer.from(String(part.value), 'utf8');
  }
  throw new ApiError('invalid_parameter', 'The multipart body has no "file" (or "csv") field.', 'file');
}

export function registerBulkReportRoute(app: FastifyInstance, services: Services) {
  app.post(
    '/v1/key/bulk-report',
    {
      onRequest: requireKey(services),
      bodyLimit: MAX_BODY_BYTES,
      schema: { summary: 'Report up to 10,000 abusive IP addresses', tags: ['v1'] },
    },
    async (request, reply) => {
      const type = String(request.headers['content-type'] ?? '').toLowerCase();
      let rows: BulkReportRow[];
      if (request.isMultipart()) rows = rowsFromCsv(await csvFromMultipart(request));
      else if (
        type.startsWith('text/csv') ||
        type.startsWith('text/plain') ||
        type.startsWith('application/csv')
      )
        rows = rowsFromCsv(
          Buffer.isBuffer(request.body) ? request.body : Buffer.from(String(request.body ?? ''), 'utf8'),
        );
      else if (type.startsWith('application/json')) rows = rowsFromJson(request.body);
      else {
        throw new ApiError(
          'unsupported_media_type',
          'Send application/json, text/csv, or multipart/form-data with a "file" field.',
        );
      }
      if (rows.length === 0) throw new ApiError('invalid_parameter', 'The bulk report holds no rows.');
      const now = services.clock.now();
      const outcome = await services.bulkReports.report(keyOf(request), rows, now);
      setQuotaHeaders(reply, 'reports', outcome.quota, now);
      return {
        total: outcome.total,
        accepted: outcome.accepted,
        rejected: outcome.rejected,
        duplicates: outcome.duplicates,
        errors: outcome.errors,
      };
    },
  );
}
