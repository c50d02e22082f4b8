'use strict';
// Loads the addon -- built from source (build/Release/wirecore.node, by
// tools/build.js), else the prebuilt one shipped in prebuilds/linux-x64/ when
// it fits this machine -- and names the constants shared with wirecore.h.
const path = require('node:path');
const { prebuiltFits, prebuiltPath } = require('./prebuilt');

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
  const fit = prebuiltFits();
  if (fit.ok) return require(prebuiltPath());
  if (fit.why) tried.push(`${prebuiltPath()} (not usable: ${fit.why})`);
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
