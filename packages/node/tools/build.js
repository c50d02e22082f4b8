'use strict';
// Builds the addon offline with node-gyp against the headers of the Node
// that runs this script (<prefix>/include/node, as Debian and the official
// tarballs install them), so no header download is needed.
// Usage: node tools/build.js [extra node-gyp args]
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules',
      'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try { candidates.push(require.resolve('node-gyp/bin/node-gyp.js')); } catch { /* not installed */ }
  return candidates.find((p) => p && fs.existsSync(p));
}

const args = ['rebuild', ...process.argv.slice(2)];
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))
    && !args.some((a) => a.startsWith('--nodedir'))) {
  args.push(`--nodedir=${prefix}`);
}
const gyp = findNodeGyp();
const cmd = gyp ? process.execPath : 'node-gyp';
const res = spawnSync(cmd, gyp ? [gyp, ...args] : args, {
  cwd: path.resolve(__dirname, '..'),
  stdio: 'inherit',
});
if (res.error) {
  console.error(`wirecore: cannot run node-gyp: ${res.error.message}`);
  process.exit(1);
}
process.exit(res.status ?? 1);
