'use strict';
// Tells binding.gyp what to compile: `node tools/sources.js sources|includes`.
// Inside the repository the addon compiles ../../core and ../../bindings/node;
// a packed tarball carries copies of them in native/ (see tools/prepack.js).
const fs = require('node:fs');
const path = require('node:path');

const pkg = path.resolve(__dirname, '..');
const packed = path.join(pkg, 'native');
const root = fs.existsSync(path.join(packed, 'core', 'include', 'wirecore.h'))
  ? packed
  : path.resolve(pkg, '..', '..');

function cFiles(dir) {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.c')).sort()
    .map((f) => path.relative(pkg, path.join(dir, f)));
}

const what = process.argv[2];
let out;
if (what === 'sources') {
  out = [...cFiles(path.join(root, 'core', 'src')), ...cFiles(path.join(root, 'bindings', 'node'))];
} else if (what === 'includes') {
  out = [path.join(root, 'core', 'include'), path.join(root, 'core', 'src')]
    .map((d) => path.relative(pkg, d));
} else {
  console.error('usage: node tools/sources.js sources|includes');
  process.exit(2);
}
console.log(out.join(' '));
