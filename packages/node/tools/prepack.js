'use strict';
// `npm pack` runs this: it copies the C sources the addon compiles (the core
// and the Node-API glue) into native/, so an installed tarball builds without
// the repository around it. `--clean` removes the copies again (postpack).
const fs = require('node:fs');
const path = require('node:path');

const pkg = path.resolve(__dirname, '..');
const repo = path.resolve(pkg, '..', '..');
const out = path.join(pkg, 'native');

fs.rmSync(out, { recursive: true, force: true });
if (process.argv.includes('--clean')) process.exit(0);

// The whole trees: the core may keep generated tables or headers beside its .c files.
for (const dir of ['core/include', 'core/src', 'bindings/node']) {
  const from = path.join(repo, dir);
  if (!fs.existsSync(from)) throw new Error(`prepack: ${from} is missing (run it inside the repository)`);
  fs.cpSync(from, path.join(out, dir), { recursive: true });
}
