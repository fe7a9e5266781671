// The ceiling for HTTP benchmarks: a bare node:http server answering a fixed JSON body.
import { createServer } from 'node:http';

const body = JSON.stringify({
  ip: '45.83.12.7',
  found: true,
  isPublic: true,
  ipVersion: 4,
  confidenceLevel: 20,
  threatLevel: 'low',
});
const port = Number(process.argv[2] ?? 18090);
createServer((_request, response) => {
  response.writeHead(200, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  response.end(body);
}).listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
