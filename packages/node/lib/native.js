'use strict';
// Loads the compiled addon (build/Release/wirecore.node, built at install
// time by tools/build.js) and names the constants shared with wirecore.h.
const path = require('node:path');

function load() {
  const tried = [];
  for (const dir of ['Release', 'Debug']) {
    const file = path.join(__dirname, '..', 'build', dir, 'wirecore.node');
    try {
      return require(file);
    } catch (err) {
      if (err.code !== 'MODULE_NOT_FOUND') throw err;
      tried.push(file);
    }
  }
  throw new Error(`wirecore: the native addon is not built (looked for ${tried.join(', ')}); ` +
    'run `npm run build` in the wirecore package');
}

module.exports = {
  native: load(),
  MSG_TEXT: 1,
  MSG_BINARY: 2,
  CODEC: { raw: 0, json: 1, msgpack: 2 },
  POLICY: { reply: 0, close: 1, ignore: 2 },
  CONNECT_DEFER: 1,
  ECLOSED: -6,
  EBACKPRESSURE: -8,
};
