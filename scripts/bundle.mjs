// Bundles the compiled CLI (dist/cli/dstore.js) into one file, dist/bin/dstore.mjs, the `dstore`
// binary. Node 20's ESM loader reads each of the ~900 modules of libp2p and friends with its own
// asynchronous file read, one import chain at a time; as one file the CLI starts in about a
// quarter of the time (see docs/BENCHMARKS.md, "Start-up"). The library (`import 'dstore'`)
// stays unbundled, for applications' own bundlers. lmdb stays external: it loads a native
// prebuilt binary relative to its own package.
import { build } from 'esbuild'

await build({
  entryPoints: ['dist/cli/dstore.js'],
  outfile: 'dist/bin/dstore.mjs',
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
})
