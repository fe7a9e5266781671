// Times a first import and a re-import of the romainmarcoux aggregate into a fresh SQLite file (BENCHMARKS.md).

import { openRuntime } from '../src/cli/runtime.js';
import { loadConfig } from '../src/config/config.js';
import { importFeed } from '../src/ingest/feed-import.js';

const files = process.argv.slice(2);
const rt = await openRuntime(
  loadConfig({ VAKT_DATABASE_URL: `sqlite:/tmp/enr-bench-${Date.now()}.db`, VAKT_LOG_LEVEL: 'silent' }),
);
await rt.services.geo.load();
let t = performance.now();
const s = await importFeed(rt.services, files, { name: 'romainmarcoux', trust: 0.3 });
console.log('first import ms', Math.round(performance.now() - t), s);
t = performance.now();
const s2 = await importFeed(rt.services, files, { name: 'romainmarcoux', trust: 0.3 });
console.log('re-import ms', Math.round(performance.now() - t), s2.added, s2.removed, s2.rescored);
await rt.close();
