// Where binding.gyp finds what the extension compiles against, wherever npm installed the packages
// (nested under ours, or hoisted beside it): `sqlite` prints the directory of the SQLite headers that
// better-sqlite3 ships. zstd for the packer (native/scriptorium_pack.inc) is the copy that zstd-napi, a
// dependency, vendors: `include` prints its header directory; `library` the static library zstd-napi
// built (npm builds dependencies first), or nothing; `sources` the compression sources to build when
// there is no such library (so the extension builds either way).
'use strict';
const path = require('node:path');
const fs = require('node:fs');

const root = path.dirname(require.resolve('zstd-napi/package.json'));
const lib = path.join(root, 'deps', 'zstd', 'lib');
const built = path.join(root, 'build', 'Release', 'zstd.a');
const what = process.argv[2];
if (what === 'sqlite') {
  console.log(path.join(path.dirname(require.resolve('better-sqlite3/package.json')), 'deps', 'sqlite3'));
} else if (what === 'include') {
  console.log(lib);
} else if (what === 'library') {
  if (fs.existsSync(built)) console.log(built);
} else if (what === 'sources') {
  if (!fs.existsSync(built)) {
    const dirs = ['common', 'compress'];
    for (const dir of dirs) {
      for (const file of fs.readdirSync(path.join(lib, dir)).sort()) {
        // relative to binding.gyp's directory (gyp places objects by source path; absolute paths break it)
        if (file.endsWith('.c')) console.log(path.relative(process.cwd(), path.join(lib, dir, file)));
      }
    }
  }
} else {
  console.error('usage: node native/deps.cjs sqlite|include|library|sources');
  process.exit(2);
}
