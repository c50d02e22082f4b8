// Prints what the core under test supports (see helpers.mjs); with an
// argument, exits 0 only when that capability is there. Used by 30-node.sh.
import { core } from './helpers.mjs';

const want = process.argv[2];
if (want) process.exit(core[want] ? 0 : 1);
console.log(JSON.stringify(core));
