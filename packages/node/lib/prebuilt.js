'use strict';
// Whether the prebuilt addon shipped in prebuilds/linux-x64/ may be used on
// this machine: Linux, x64, glibc (not musl) at least as new as the glibc it
// was built against (recorded in prebuilds/linux-x64/glibc.txt).
const fs = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, '..', 'prebuilds', 'linux-x64');

function prebuiltPath() {
  return path.join(dir, 'wirecore.node');
}

function versionAtLeast(have, want) {
  const h = have.split('.').map(Number);
  const w = want.split('.').map(Number);
  for (let i = 0; i < w.length; i++) {
    if ((h[i] || 0) !== w[i]) return (h[i] || 0) > w[i];
  }
  return true;
}

// Returns { ok, why }: why says what fits, or why not ('' = no prebuilt shipped).
function prebuiltFits() {
  if (!fs.existsSync(prebuiltPath())) return { ok: false, why: '' };
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { ok: false, why: `it is for linux-x64, this is ${process.platform}-${process.arch}` };
  }
  const header = process.report && process.report.getReport().header;
  const glibc = header && header.glibcVersionRuntime;
  if (!glibc) return { ok: false, why: 'it needs glibc, this C library is not glibc (musl?)' };
  let want = '0';
  try { want = fs.readFileSync(path.join(dir, 'glibc.txt'), 'utf8').trim(); } catch { /* none */ }
  if (!versionAtLeast(glibc, want)) {
    return { ok: false, why: `it needs glibc >= ${want}, this is glibc ${glibc}` };
  }
  return { ok: true, why: `Node-API 8, glibc ${glibc} >= ${want}` };
}

module.exports = { prebuiltFits, prebuiltPath };
