// Measures loading time, heap and per-lookup time of the offline geo/ASN tables (BENCHMARKS.md).

import { parseIp } from '../src/core/ip.js';
import { CsvGeoLookup } from '../src/services/geo-lookup.js';

const g = new CsvGeoLookup();
const t0 = performance.now();
await g.load();
console.log(g.stats, performance.now() - t0, process.memoryUsage());
for (const s of ['1.1.1.1', '8.8.8.8', '45.83.12.40', '2001:4860:4860::8888', '185.220.101.1']) {
  const r = parseIp(s);
  if (!r.ok) continue;
  console.log(s, g.lookup(r.ip));
}
const ip = parseIp('8.8.8.8');
if (ip.ok) {
  const t = performance.now();
  for (let i = 0; i < 1e6; i++) g.lookup(ip.ip);
  console.log('us/lookup', ((performance.now() - t) / 1e6) * 1000);
}
