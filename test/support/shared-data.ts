// Locates the shared real-data directory (../shared/data from the repo root; worktrees sit one level deeper).

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** Absolute path of a path inside the shared data directory, or null when the data is absent. */
export function sharedDataPath(relative: string): string | null {
  const roots = [
    process.env.VAKT_SHARED_DATA,
    resolve(process.cwd(), '../shared/data'),
    resolve(process.cwd(), '../../shared/data'),
  ];
  for (const root of roots) {
    if (!root) continue;
    const candidate = resolve(root, relative);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}
