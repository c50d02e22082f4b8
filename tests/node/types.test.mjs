// index.d.ts compiles and types the documented usage (tsc --noEmit on types/usage.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const tsc = path.join(here, 'node_modules', 'typescript', 'bin', 'tsc');

// tsc is slow on a busy machine: this test gets its own generous time limit.
test('index.d.ts types every documented use of the API', {
  timeout: 300000, skip: !fs.existsSync(tsc) && 'typescript is not installed (npm ci in tests/node)',
}, () => {
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(here, 'types')], { encoding: 'utf8', timeout: 280000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
