// GET /openapi.json describes the /v1 API only; TAXII (its own specification) and /healthz are named in
// the description, none of their routes (not even the read-only 405 ones) appear as paths.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from './helpers/test-app.js';

describe('GET /openapi.json', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp('sqlite');
  });
  after(async () => t?.close());

  it('lists the /v1 routes and no TAXII or health route, and points to the TAXII specification', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(response.statusCode, 200);
    const document = response.json() as { info: { description?: string }; paths: Record<string, unknown> };
    const paths = Object.keys(document.paths);
    for (const expected of [
      '/v1/key/check/{ip}',
      '/v1/key/report',
      '/v1/key/blacklist',
      '/v1/key/bulk-report',
    ]) {
      assert.ok(paths.includes(expected), `${expected} in ${paths.join(', ')}`);
    }
    assert.deepEqual(
      paths.filter((path) => !path.startsWith('/v1/')),
      [],
    );
    assert.match(document.info.description ?? '', /TAXII 2\.1/);
  });
});
