// Locates the shared real-data folder for tests and benchmarks; null when it is absent (callers skip).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * `../shared/data` from the repo root (the layout of /work/main and CI); a worktree one level deeper
 * finds it at `../../shared/data`; `VAKT_SHARED_DATA` overrides both.
 */
export function sharedDataDir(): string | null {
  const candidates = [
    process.env.VAKT_SHARED_DATA,
    resolve(process.cwd(), '../shared/data'),
    resolve(process.cwd(), '../../shared/data'),
  ];
  for (const candidate of candidates) if (candidate && existsSync(candidate)) return candidate;
  return null;
}

/** A file under the shared data folder, or null when the folder or the file is missing. */
export function sharedDataFile(...parts: string[]): string | null {
  const dir = sharedDataDir();
  if (dir === null) return null;
  const path = resolve(dir, ...parts);
  return existsSync(path) ? path : null;
}

/** Absolute path of a path inside the shared data folder, or null when it is absent. */
export function sharedDataPath(relative: string): string | null {
  return sharedDataFile(relative);
}
