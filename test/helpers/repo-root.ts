import fs from 'node:fs';
import path from 'node:path';

/** The repository's root: compiled tests run from dist/ or another out dir, so it is found by its package.json and configs/. */
export function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) || !fs.existsSync(path.join(dir, 'configs'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('repository root not found');
    dir = parent;
  }
  return dir;
}
