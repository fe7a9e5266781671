import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReportCsvResult, ReportCsvRow } from './report-csv.js';
import { isReportCsvRowError, parseReportCsv } from './report-csv.js';

function rowsOf(result: ReportCsvResult): ReportCsvRow[] {
  assert.ok(result.ok, `expected a parse, got ${JSON.stringify(result)}`);
  return result.rows;
}

// SPEC §3.4, case 005 (verbatim input).
const CASE_005 = [
  'IP,Categories,ReportDate,Comment',
  '45.83.12.20,"18,22",2024-12-18T10:00:37-04:00,"Failed password for invalid user x port 39121 ssh2"',
  '45.83.12.21,"14,15,18",2024-12-18T16:10:58+04:00,"two lines',
  'and a comma, inside"',
  '45.83.12.22,18,2024-12-18T16:11:00Z,"he said \\"hi\\" and ""bye"""',
  '1..218.28,18,2024-12-18T16:11:00Z,bad row',
  '',
].join('\n');

describe('parseReportCsv: case 005 (AbuseIPDB export)', () => {
  for (const [name, body] of [
    ['LF', CASE_005],
    ['CRLF', CASE_005.replaceAll('\n', '\r\n')],
    ['BOM + CRLF', `\uFEFF${CASE_005.replaceAll('\n', '\r\n')}`],
  ] as const) {
    it(`keeps comments byte-identical and maps categories (${name})`, () => {
      const result = parseReportCsv(body);
      assert.ok(result.ok);
      assert.equal(result.layout, 'abuseipdb');
      assert.equal(result.hasHeader, true);
      const newline = name === 'LF' ? '\n' : '\r\n';
      assert.deepEqual(result.rows, [
        {
          row: 1,
          ip: '45.83.12.20',
          categories: ['brute_force'],
          timestamp: '2024-12-18T10:00:37-04:00',
          comment: 'Failed password for invalid user x port 39121 ssh2',
        },
        {
          row: 2,
          ip: '45.83.12.21',
          categories: ['port_scan', 'other', 'brute_force'],
          timestamp: '2024-12-18T16:10:58+04:00',
          comment: `two lines${newline}and a comma, inside`,
        },
        {
          row: 3,
          ip: '45.83.12.22',
          categories: ['brute_force'],
          timestamp: '2024-12-18T16:11:00Z',
          comment: 'he said "hi" and "bye"',
        },
        // Row 4 is structurally fine; the service's IP validator rejects it with invalid_ip.
        {
          row: 4,
          ip: '1..218.28',
          categories: ['brute_force'],
          timestamp: '2024-12-18T16:11:00Z',
          comment: 'bad row',
        },
      ]);
    });
  }

  it('accepts bytes and refuses invalid UTF-8', () => {
    assert.equal(rowsOf(parseReportCsv(Buffer.from(CASE_005))).length, 4);
    const result = parseReportCsv(Buffer.from([0x31, 0xff, 0xfe, 0x0a]));
    assert.deepEqual(result, { ok: false, code: 'invalid_encoding', error: 'The CSV is not valid UTF-8' });
  });
});

describe('parseReportCsv: positional layout', () => {
  it('reads rows without a header', () => {
    const rows = rowsOf(
      parseReportCsv('45.83.12.20,brute_force,ssh,Failed password\n2a05:d014:ff:212::5,2\n'),
    );
    assert.deepEqual(rows, [
      { row: 1, ip: '45.83.12.20', categories: ['brute_force'], protocol: 'ssh', comment: 'Failed password' },
      { row: 2, ip: '2a05:d014:ff:212::5', categories: ['2'] },
    ]);
  });

  it('skips a header whose first field is not an IP and numbers data rows from 1', () => {
    const result = parseReportCsv('IP,Category,Protocol,Comment\n45.83.12.20,port_scan,,\n');
    assert.ok(result.ok);
    assert.equal(result.hasHeader, true);
    assert.equal(result.layout, 'positional');
    assert.deepEqual(result.rows, [{ row: 1, ip: '45.83.12.20', categories: ['port_scan'] }]);
  });

  it('detects ";" as the delimiter and keeps commas in the comment', () => {
    const result = parseReportCsv(
      'ip;category;protocol;comment\r\n45.83.12.20;brute_force;ssh;tried root, admin\r\n',
    );
    assert.ok(result.ok);
    assert.equal(result.delimiter, ';');
    assert.deepEqual(result.rows, [
      {
        row: 1,
        ip: '45.83.12.20',
        categories: ['brute_force'],
        protocol: 'ssh',
        comment: 'tried root, admin',
      },
    ]);
  });

  it('joins unquoted delimiters in the last (comment) column back', () => {
    const rows = rowsOf(parseReportCsv('45.83.12.20,brute_force,ssh,user root, then admin, then test'));
    assert.deepEqual(rows[0], {
      row: 1,
      ip: '45.83.12.20',
      categories: ['brute_force'],
      protocol: 'ssh',
      comment: 'user root, then admin, then test',
    });
  });

  it('splits a quoted category list, first one primary', () => {
    const rows = rowsOf(parseReportCsv('45.83.12.20,"port_scan, brute_force",ssh'));
    assert.deepEqual(rows[0], {
      row: 1,
      ip: '45.83.12.20',
      categories: ['port_scan', 'brute_force'],
      protocol: 'ssh',
    });
  });

  it('skips blank lines without counting them', () => {
    const rows = rowsOf(parseReportCsv('\n45.83.12.20,1\n\n  \n45.83.12.21,2\n\n'));
    assert.deepEqual(
      rows.map((row) => [row.row, row.ip]),
      [
        [1, '45.83.12.20'],
        [2, '45.83.12.21'],
      ],
    );
  });

  it('treats any first row whose first field is not an IP as a header (SPEC §3.4)', () => {
    const rows = rowsOf(parseReportCsv('not-an-ip,1\n45.83.12.20,1\n'));
    assert.deepEqual(
      rows.map((row) => row.ip),
      ['45.83.12.20'],
    );
  });
});

describe('parseReportCsv: quoting', () => {
  it('handles doubled quotes, backslash-escaped quotes and trailing backslashes', () => {
    const rows = rowsOf(
      parseReportCsv(
        [
          '45.83.12.20,1,ssh,"a ""quoted"" word"',
          '45.83.12.21,1,ssh,"a \\"quoted\\" word"',
          '45.83.12.23,1,ssh,"ends in a backslash \\\\"',
          '45.83.12.24,1,ssh,"a \\\\\\"mixed\\\\\\" run"',
          '45.83.12.25,1,ssh,plain "unquoted" text \\" kept',
        ].join('\n'),
      ),
    );
    const comments = rows.map((row) => (isReportCsvRowError(row) ? row.error : row.comment));
    assert.deepEqual(comments, [
      'a "quoted" word',
      'a "quoted" word',
      'ends in a backslash \\',
      'a \\"mixed\\" run',
      'plain "unquoted" text \\" kept',
    ]);
  });

  it('reads a quoted field ending in one backslash as an escaped quote (the cost of accepting \\")', () => {
    const rows = rowsOf(parseReportCsv('45.83.12.20,1,ssh,"C:\\dir\\"\n45.83.12.21,1\n'));
    assert.deepEqual(rows, [
      {
        row: 1,
        ip: '45.83.12.20',
        error: 'Unterminated quoted field at end of input',
        code: 'invalid_parameter',
      },
    ]);
  });

  it('reports an unterminated quote at end of input as a row error and keeps earlier rows', () => {
    const rows = rowsOf(parseReportCsv('45.83.12.20,1,ssh,fine\n45.83.12.21,1,ssh,"never closed\nmore'));
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[0], {
      row: 1,
      ip: '45.83.12.20',
      categories: ['1'],
      protocol: 'ssh',
      comment: 'fine',
    });
    assert.deepEqual(rows[1], {
      row: 2,
      ip: '45.83.12.21',
      error: 'Unterminated quoted field at end of input',
      code: 'invalid_parameter',
    });
  });

  it('reports text after a closing quote as a row error and resynchronises on the next line', () => {
    const rows = rowsOf(parseReportCsv('45.83.12.20,"1"x,ssh\n45.83.12.21,1\n'));
    assert.deepEqual(rows, [
      {
        row: 1,
        ip: '45.83.12.20',
        error: 'Unexpected text after a closing quote',
        code: 'invalid_parameter',
      },
      { row: 2, ip: '45.83.12.21', categories: ['1'] },
    ]);
  });

  it('tolerates spaces around quoted fields', () => {
    const rows = rowsOf(parseReportCsv('45.83.12.20, "1" , ssh , "x, y"'));
    assert.deepEqual(rows[0], {
      row: 1,
      ip: '45.83.12.20',
      categories: ['1'],
      protocol: 'ssh',
      comment: 'x, y',
    });
  });
});

describe('parseReportCsv: AbuseIPDB categories', () => {
  it("names the layout's own id range when a row has none", () => {
    const rows = rowsOf(
      parseReportCsv('IP,Categories,ReportDate,Comment\n45.83.12.22,,,x\n45.83.12.23," ",,\n'),
    );
    assert.deepEqual(rows, [
      {
        row: 1,
        ip: '45.83.12.22',
        error: 'Missing AbuseIPDB category ids (1-23)',
        code: 'invalid_parameter',
      },
      {
        row: 2,
        ip: '45.83.12.23',
        error: 'Missing AbuseIPDB category ids (1-23)',
        code: 'invalid_parameter',
      },
    ]);
  });

  it('rejects unknown ids per row', () => {
    const rows = rowsOf(
      parseReportCsv('IP,Categories,ReportDate,Comment\n45.83.12.20,"18,99",,x\n45.83.12.21,abc,,\n'),
    );
    assert.deepEqual(rows, [
      { row: 1, ip: '45.83.12.20', error: 'Unknown AbuseIPDB category id "99"', code: 'invalid_parameter' },
      { row: 2, ip: '45.83.12.21', error: 'Unknown AbuseIPDB category id "abc"', code: 'invalid_parameter' },
    ]);
  });

  it('works with ";" and an unquoted id list', () => {
    const result = parseReportCsv(
      'IP;Categories;ReportDate;Comment\n45.83.12.20;4,22;2024-12-18T16:11:00Z;x\n',
    );
    assert.ok(result.ok);
    assert.equal(result.layout, 'abuseipdb');
    assert.deepEqual(result.rows[0], {
      row: 1,
      ip: '45.83.12.20',
      categories: ['ddos', 'brute_force'],
      timestamp: '2024-12-18T16:11:00Z',
      comment: 'x',
    });
  });
});

describe('parseReportCsv: row limit', () => {
  it('stops with too_many_rows past the limit, header excluded', () => {
    const body = `IP,Category\n${Array.from({ length: 11 }, (_, i) => `45.83.12.${i},1`).join('\n')}`;
    assert.deepEqual(parseReportCsv(body, { maxRows: 10 }), { ok: false, code: 'too_many_rows', limit: 10 });
    const exact = parseReportCsv(
      `IP,Category\n${Array.from({ length: 10 }, (_, i) => `45.83.12.${i},1`).join('\n')}`,
      {
        maxRows: 10,
      },
    );
    assert.ok(exact.ok);
    assert.equal(exact.rows.length, 10);
  });

  it('defaults to 10,000 rows', () => {
    const body = Array.from({ length: 10_001 }, (_, i) => `45.83.${i >> 8}.${i & 255},1`).join('\n');
    const result = parseReportCsv(body);
    assert.deepEqual(result, { ok: false, code: 'too_many_rows', limit: 10_000 });
  });

  it('returns no rows for an empty body or a header alone', () => {
    assert.deepEqual(rowsOf(parseReportCsv('')), []);
    assert.deepEqual(rowsOf(parseReportCsv('IP,Category,Protocol,Comment\r\n')), []);
  });
});
