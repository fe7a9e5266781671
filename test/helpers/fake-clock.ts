// A settable clock for tests (the day rollover, the 15-minute merge window, key expiry).
import type { Clock } from '../../src/core/time.js';

export class FakeClock implements Clock {
  constructor(private current: number = Date.UTC(2026, 2, 15, 12, 0, 0)) {}
  now(): number {
    return this.current;
  }
  set(epochMs: number) {
    this.current = epochMs;
  }
  advance(ms: number) {
    this.current += ms;
  }
}
