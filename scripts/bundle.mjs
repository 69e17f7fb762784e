// Bundles the compiled CLI (dist/cli/dstore.js) into one file, dist/bin/dstore.mjs, the `dstore`
// binary, and dist/src/index.js into dist/bundle/index.mjs (`dstore/bundle`). Node 20's ESM loader reads each of the ~900 modules of libp2p and friends with its own
// asynchronous file read, one import chain at a time; as one file the CLI starts in about a
// quarter of the time (see docs/BENCHMARKS.md). The default library entry (`import 'dstore'`)
// stays unbundled, for applications' own bundlers and dependency updates. lmdb stays external: it loads a native
// prebuilt binary relative to its own package.
import { build } from 'esbuild'

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['lmdb'],
  logLevel: 'warning',
  banner: {
    // CommonJS dependencies inside an ES module bundle need require/__filename/__dirname.
    // (esbuild keeps the entry's #! line first.)
    js: [
      "import { createRequire as __dstoreCreateRequire } from 'node:module'",
      "import { fileURLToPath as __dstoreFileURLToPath } from 'node:url'",
      "import { dirname as __dstoreDirname } from 'node:path'",
      'const require = __dstoreCreateRequire(import.meta.url)',
      'const __filename = __dstoreFileURLToPath(import.meta.url)',
      'const __dirname = __dstoreDirname(__filename)'
    ].join('\n')
  }
}

// Each bundle gets the hashing worker beside it: the pool starts it as
// `new URL('./hash-worker.js', import.meta.url)`, which in a bundle is the bundle's own folder.
for (const [entry, dir, name] of [['dist/cli/dstore.js', 'dist/bin', 'dstore.mjs'], ['dist/src/index.js', 'dist/bundle', 'index.mjs']]) {
  // `dstore` binary, and the library pre-bundled for applications that start often:
  // `import { createLocal } from 'dstore/bundle'` (types are those of 'dstore').
  await build({ ...common, entryPoints: [entry], outfile: `${dir}/${name}` })
  await build({ ...common, entryPoints: ['dist/src/core/blake3/hash-worker.js'], outfile: `${dir}/hash-worker.js`, banner: { js: common.banner.js } })
}
