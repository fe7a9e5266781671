// Keeps node's process.nextTick object shape alive for the life of the process (decision 0009).
//
// Node 20 builds every nextTick entry as an object literal with two computed symbol keys. V8 records the
// shape (map) of that literal in the function's feedback, but holds the map only weakly: when a full GC
// runs while no tick entry is alive — which happens after a startup that allocates (building the app,
// compiling schemas, loading the geo tables) — the map is collected, the next entry gets a new map, the
// feedback turns megamorphic for good and every later nextTick (several per HTTP request, from node's own
// stream and http code) defines its properties through the V8 runtime: ~5 µs more CPU per request.
// Holding one real tick entry keeps its map, and so the whole transition chain, alive.
import { createHook } from 'node:async_hooks';

let pinned: object | null = null;

/**
 * Holds one nextTick entry for good. Call it as early as possible in a server process, before any full
 * GC: the map it holds must be the one the feedback records. Idempotent; returns whether one is held.
 */
export function keepNextTickShape(): boolean {
  if (pinned !== null) return true;
  // An init hook sees the entry itself as its resource; it is enabled only for this one call.
  const hook = createHook({
    init(_asyncId, type, _triggerAsyncId, resource) {
      if (type === 'TickObject' && pinned === null && typeof resource === 'object' && resource !== null) {
        pinned = resource;
      }
    },
  });
  hook.enable();
  try {
    process.nextTick(() => {});
  } finally {
    hook.disable();
  }
  return pinned !== null;
}
