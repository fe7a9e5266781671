// The ceiling for HTTP benchmarks: a bare node:http server answering a fixed JSON body.
// Usage: node bench/baseline-server.mjs PORT [RESPONSE_FILE]
// Without RESPONSE_FILE: a small fixed body. With it: the body and headers stored there as JSON
// ({ headers: [name, value, …], body }), e.g. a check's own answer, sent as they are on every request.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 18090);
const file = process.argv[3];
let body = JSON.stringify({
  ip: '45.83.12.7',
  found: true,
  isPublic: true,
  ipVersion: 4,
  confidenceLevel: 20,
  threatLevel: 'low',
});
let headers = ['content-type', 'application/json; charset=utf-8', 'content-length', Buffer.byteLength(body)];
if (file) {
  const stored = JSON.parse(readFileSync(file, 'utf8'));
  body = stored.body;
  headers = stored.headers;
}
createServer((_request, response) => {
  response.writeHead(200, headers);
  response.end(body);
}).listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
