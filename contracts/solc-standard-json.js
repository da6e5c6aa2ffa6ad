#!/usr/bin/env node
// Runs the pinned solc-js (contracts/node_modules/solc, installed by scripts/install-solc) in
// standard-JSON mode: reads the input JSON on stdin and writes the output JSON to the file named
// by the first argument (a file, not stdout: node may drop the tail of a large piped stdout when
// it exits). With --version, prints the compiler version instead.
'use strict';
const fs = require('fs');
let solc;
try {
  solc = require('solc');
} catch (e) {
  process.stderr.write('solc-js is not installed: run scripts/setup (or scripts/install-solc)\n');
  process.exit(2);
}
if (process.argv[2] === '--version') {
  process.stdout.write(solc.version() + '\n');
} else if (process.argv.length === 3) {
  const input = fs.readFileSync(0, 'utf8');
  fs.writeFileSync(process.argv[2], solc.compile(input));
} else {
  process.stderr.write('usage: solc-standard-json.js OUTPUT_FILE < input.json | --version\n');
  process.exit(2);
}
