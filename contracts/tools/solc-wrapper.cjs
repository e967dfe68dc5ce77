#!/usr/bin/env node
// A `solc` command line for forge, backed by solc-js (the npm `solc` package).
//
// forge needs a native solc binary; none can be downloaded here, so forge is pointed at this
// file (`forge build --offline --use <shim>`, the shim runs `node solc-wrapper.cjs "$@"`).
// forge only ever asks two things of solc:
//   solc --version                                     -> answered in the native format
//   solc --standard-json [--base-path P] [--include-path P]... [--allow-paths P,...] < input.json
// solc-js has no file system access of its own, so sources that forge did not inline are read
// here, resolved against the base path, then each include path (what native solc does).
// The solc-js package is found through $HORUS_SOLCJS (its directory), else normal `require`.
'use strict';

const fs = require('fs');
const path = require('path');

const solc = require(process.env.HORUS_SOLCJS || 'solc');

function parseArgs(argv) {
  const opts = { version: false, standardJson: false, basePath: null, includePaths: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => (eq > 0 && arg.startsWith('--') ? arg.slice(eq + 1) : argv[++i]);
    switch (name) {
      case '--version': opts.version = true; break;
      case '--standard-json': opts.standardJson = true; break;
      case '--base-path': opts.basePath = value(); break;
      case '--include-path': opts.includePaths.push(value()); break;
      case '--allow-paths': value(); break; // solc-js reads nothing itself; resolution below is the allow-list
      default: break; // other flags do not change standard-json output
    }
  }
  return opts;
}

function makeImportCallback(opts) {
  const roots = [opts.basePath || process.cwd(), ...opts.includePaths].map((p) => path.resolve(p));
  return function findImports(importPath) {
    const candidates = path.isAbsolute(importPath) ? [importPath] : roots.map((r) => path.join(r, importPath));
    for (const file of candidates) {
      try {
        return { contents: fs.readFileSync(file, 'utf8') };
      } catch (e) {
        // try the next root
      }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(', ')})` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.version) {
    // native format; forge parses the last line ("Version: x.y.z+commit.hash.platform")
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return 0;
  }
  if (!opts.standardJson) {
    process.stderr.write('solc-wrapper: only --version and --standard-json are supported\n');
    return 2;
  }
  const input = fs.readFileSync(0, 'utf8');
  const output = solc.compile(input, { import: makeImportCallback(opts) });
  process.stdout.write(output);
  return 0;
}

process.exitCode = main();
