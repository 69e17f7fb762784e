// `npm install` hook: builds dstore's native addon (binding.gyp -> build/Release/dstore_native.node:
// the BLAKE3 backend, and what the fs store's O_DIRECT reads and writes need) with the
// node-gyp that npm ships, against the Node headers npm is configured with. The addon is
// optional: where it cannot be built (no C compiler, no headers), this prints one line saying
// so and the install still succeeds; dstore then hashes with its WebAssembly backend
// (src/core/blake3/index.ts) and the fs store reads and writes through the page cache. DSTORE_SKIP_NATIVE=1 skips the build (and removes an addon an
// earlier install built, so that it is not loaded either).
import { spawnSync } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (process.env.DSTORE_SKIP_NATIVE === '1') {
  rmSync(join(root, 'build', 'Release', 'dstore_native.node'), { force: true })
  console.log('dstore: DSTORE_SKIP_NATIVE=1, native addon not built (hashing with WebAssembly)')
  process.exit(0)
}
// npm sets npm_config_node_gyp to its own node-gyp for lifecycle scripts; elsewhere, look beside npm.
const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
].filter(p => p != null && p !== '' && existsSync(p))
if (candidates.length === 0) {
  console.warn('dstore: node-gyp not found; native addon not built (hashing with WebAssembly, about 3x slower)')
  process.exit(0)
}
// The headers of the running Node, when it has them beside it (Debian's /usr, an official tarball):
// node-gyp would otherwise download them.
const args = [candidates[0], 'rebuild', '--release']
const prefix = join(dirname(process.execPath), '..')
if ((process.env.npm_config_nodedir ?? '') === '' && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`)
const res = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' })
if (res.status === 0 && existsSync(join(root, 'build', 'Release', 'dstore_native.node'))) {
  console.log('dstore: built the native addon (build/Release/dstore_native.node)')
} else {
  const why = `${res.stderr ?? ''}${res.stdout ?? ''}`.split('\n').filter(l => /error|not found|ERR!/i.test(l)).slice(0, 3).join(' | ')
  console.warn(`dstore: native addon build failed, hashing with WebAssembly instead (about 3x slower)${why !== '' ? `: ${why}` : ''}`)
}
