'use strict';
// `npm install` runs this. A tarball from scripts/package.sh carries a
// prebuilt addon (prebuilds/linux-x64/wirecore.node, Node-API 8: one binary
// for every Node >= 18) with the libraries it needs beside it; when it fits
// this machine (Linux x64, glibc at least the one it was built on) and loads,
// nothing is compiled. Otherwise -- another platform, musl (Alpine), an older
// glibc, or `npm install --build-from-source` -- it builds from the bundled
// sources with node-gyp (tools/build.js), and says what to install when that fails.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { prebuiltFits, prebuiltPath } = require('../lib/prebuilt');

const fromSource = /^(1|true)$/i.test(process.env.npm_config_build_from_source || '')
  || /^(1|true)$/i.test(process.env.WIRECORE_BUILD_FROM_SOURCE || '');

if (!fromSource) {
  const fit = prebuiltFits();
  if (fit.ok) {
    try {
      require(prebuiltPath());
      console.log(`wirecore: using the prebuilt addon for linux-x64 (${fit.why})`);
      process.exit(0);
    } catch (err) {
      console.warn(`wirecore: the prebuilt addon does not load here (${err.message}); building from source`);
    }
  } else if (fit.why) {
    console.warn(`wirecore: no prebuilt addon fits (${fit.why}); building from source`);
  }
}

const res = spawnSync(process.execPath, [path.join(__dirname, 'build.js')], { stdio: 'inherit' });
if (res.status !== 0) {
  console.error([
    'wirecore: building the addon from source failed. It needs a C compiler, make, python3',
    'and the development files of wslay, msgpack-c, OpenSSL (libssl, libcrypto), PCRE2, hiredis and zlib:',
    '  Debian/Ubuntu: apt install build-essential python3 libwslay-dev libmsgpack-dev libssl-dev libpcre2-dev libhiredis-dev zlib1g-dev',
    '  Alpine:        apk add build-base python3 linux-headers wslay-dev msgpack-c-dev openssl-dev pcre2-dev hiredis-dev zlib-dev',
  ].join('\n'));
  process.exit(res.status ?? 1);
}
