/**
 * dstore in the side-by-side comparison (see `../lib/roles.ts` for the commands):
 *
 *   node dist/bench/roles/dstore.js provider|requester
 *
 * - provider: a Global (`createGlobal`, fs store, fsync on). `put`/`putMany` go through
 *   `GlobalPeer.put`: hashed, verified and durably stored, the "put at the API". `plainWrite`
 *   is the reference beside it: the same bytes written to a file on the same file system the
 *   way the fs store writes (4 MiB positioned writes, an fdatasync started every 32 MiB, a last
 *   fdatasync, rename, folder fsync), with no hashing and no index, but through the page cache
 *   (the store writes directly, `O_DIRECT`, where the filesystem takes it): what the disk and
 *   page cache allow. The files are kept (as a store keeps its values) until `stop`.
 * - requester: a Local (`createLocal`) connected to the provider. A value that fits the cache
 *   is fetched with `Local.get` (verified and cached, so the next `get` is a cache hit); a value
 *   that does not, or any value when started with `stream: true`, is streamed with `Local.cat`
 *   and only counted. `put` is `Local.put` over the network. `copy` times the caller's copy
 *   of the value the last `get` returned (`Uint8Array.prototype.slice`, a fresh buffer), apart
 *   from the get itself, so the bench can say what a caller's own copy costs whether or not
 *   `Local.get` copies for it.
 * - both run with the GC policy `dstore global` and `dstore local` set (`tuneGcForServing`),
 *   unless `DSTORE_BENCH_GC` says otherwise (`../lib/gc-policy.ts`: `global`, the provider
 *   only, as an application's own `createLocal` runs; `default`, neither).
 *
 * Values are `data(size, seed)`, generated before the clock starts, except past 256 MiB where
 * they are streamed from `dataPieces` (generation is then inside the put's time).
 */
import '../../src/runtime-shim.js'
import { open, mkdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { GlobalPeer, LocalPeer, Encryption } from '../../src/index.js'
// DSTORE_BENCH_IMPORT=bundle loads the pre-bundled library (`dstore/bundle`) instead of the
// default module graph; both count in the start time, which is measured from process start.
const { createGlobal, createLocal, tuneGcForServing } = (process.env.DSTORE_BENCH_IMPORT === 'bundle'
  ? await import(new URL('../../bundle/index.mjs', import.meta.url).href)
  : await import('../../src/index.js')) as typeof import('../../src/index.js')
import { serveCommands } from '../lib/serve.js'
import { peakRssMiB, resetPeakRss } from '../lib/child.js'
import { data, dataPieces } from '../lib/data.js'
import { gcPolicyInForce, roleTunesGc } from '../lib/gc-policy.js'

const role = process.argv[2]
if (role !== 'provider' && role !== 'requester') {
  process.stderr.write('usage: dstore.js provider|requester\n')
  process.exit(2)
}
// Both sides run as `dstore global` and `dstore local` do, with a serving process's GC policy,
// unless DSTORE_BENCH_GC says otherwise (../lib/gc-policy.ts).
const gcPolicy = gcPolicyInForce()
// (gcPolicyInForce has refused a --heap-growing-percent of node's own, which would win.)
if (roleTunesGc(gcPolicy, role)) tuneGcForServing()

/** Cache of the requester (values only: outboards are not counted): two 256 MiB values. */
const CACHE_SIZE = 512 * 2 ** 20
/** Largest value generated whole before a put; bigger ones are streamed. */
const WHOLE_MAX = 256 * 2 ** 20

// A collectable heap before `reset-rss`, so the peak measured is the transfer's, not garbage
// left by an earlier put.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

// Every transfer passes a signal, as the CLI always does: a signal once kept every piece of a
// transfer reachable, which a bench without one never saw.
const { signal } = new AbortController()

let global: GlobalPeer | undefined
let local: LocalPeer | undefined
let streamOnly = false
let startMs: number | undefined
/** Provider: the store's folder (where `plainWrite` puts its files) and a counter for their names. */
let providerDir: string | undefined
let plainFiles = 0
/** Requester: the value the last `get` with `keep` returned (held only until `copy` or the next get). */
let lastValue: Uint8Array | undefined
/** The caller's own buffer that `get` with `into` decodes into (see `into`), reused get after get. */
let intoBuffer: Uint8Array | undefined

/** `plainWrite`'s piece and early-sync sizes: the fs store's slot and EARLY_SYNC (src/core/store/fs/put.ts). */
const PLAIN_PIECE = 4 << 20
const PLAIN_EARLY_SYNC = 32 << 20

/**
 * Writes `bytes` to a new file under `dir` as the fs store writes a large value: positioned
 * writes of 4 MiB in order, a background fdatasync every 32 MiB, a last fdatasync, then a
 * rename into place and an fsync of the folder. → milliseconds, from open to the folder fsync.
 */
async function plainWrite (dir: string, bytes: Uint8Array): Promise<number> {
  const tmp = join(dir, `tmp-${plainFiles}`)
  const final = join(dir, `value-${plainFiles++}`)
  const t0 = performance.now()
  const handle = await open(tmp, 'wx')
  let syncing: Promise<void> | undefined
  let syncedTo = 0
  try {
    for (let off = 0; off < bytes.length;) {
      const end = Math.min(bytes.length, off + PLAIN_PIECE)
      while (off < end) off += (await handle.write(bytes, off, end - off, off)).bytesWritten
      if (syncing === undefined && off - syncedTo >= PLAIN_EARLY_SYNC) {
        syncedTo = off
        syncing = handle.datasync().finally(() => { syncing = undefined })
      }
    }
    await syncing
    await handle.datasync()
  } finally {
    await handle.close()
  }
  await rename(tmp, final)
  const folder = await open(dir, 'r')
  try { await folder.sync() } finally { await folder.close() }
  return performance.now() - t0
}
/** The value of the next `putPrepared` (see `prepare`). */
let prepared: Uint8Array | Iterable<Uint8Array> | undefined

function source (size: number, seed: number): Uint8Array | Iterable<Uint8Array> {
  return size <= WHOLE_MAX ? data(size, seed) : dataPieces(size, seed)
}

function encryptionOf (msg: { encryption?: Encryption }): Encryption[] {
  return [msg.encryption ?? 'tls']
}

async function getOne (l: LocalPeer, cid: string, size: number | undefined, keep = false): Promise<{ bytes: number, hit: boolean }> {
  const hitsBefore = l.stats().hits
  let bytes = 0
  if (!streamOnly && (size === undefined || size * 1.01 <= CACHE_SIZE)) {
    const value = await l.get(cid, { signal })
    bytes = value.length
    if (keep) lastValue = value
  } else {
    for await (const part of l.cat(cid, { signal })) bytes += part.length
  }
  if (size !== undefined && bytes !== size) throw new Error(`got ${bytes} bytes of ${cid}, expected ${size}`)
  return { bytes, hit: l.stats().hits > hitsBefore }
}

async function handle (msg: any): Promise<unknown> {
  switch (msg.cmd) {
    case 'rss':
      return { peakMiB: await peakRssMiB(), rssMiB: process.memoryUsage().rss / 2 ** 20 }
    case 'reset-rss':
      gc()
      await resetPeakRss()
      return { ok: true }
    case 'exit':
      await local?.stop()
      await global?.stop()
      process.stdout.write(JSON.stringify({ ok: true }) + '\n')
      process.exit(0)
  }
  if (role === 'provider') {
    switch (msg.cmd) {
      case 'start': {
        if (global != null) throw new Error('already started')
        global = await createGlobal({ repo: msg.dir, encryption: encryptionOf(msg) })
        providerDir = msg.dir
        startMs ??= performance.now()
        return { addrs: global.multiaddrs, startMs }
      }
      case 'put': {
        const g = started(global)
        const src = source(msg.size, msg.seed)
        const t0 = performance.now()
        const cid = await g.put(src, { signal })
        return { cid: cid.toString(), ms: performance.now() - t0 }
      }
      case 'plainWrite': {
        started(global)
        const dir = join(providerDir as string, 'plain-write')
        await mkdir(dir, { recursive: true })
        const ms = await plainWrite(dir, data(msg.size, msg.seed))
        return { ms, bytes: msg.size }
      }
      case 'putMany': {
        const g = started(global)
        const cids: string[] = []
        for (let i = 0; i < msg.count; i++) cids.push((await g.put(data(msg.size, msg.seed + i))).toString())
        return { cids }
      }
      case 'stop': {
        const g = global
        global = undefined
        await g?.stop()
        if (providerDir !== undefined) await rm(join(providerDir, 'plain-write'), { recursive: true, force: true })
        return { ok: true }
      }
    }
  } else {
    switch (msg.cmd) {
      case 'start': {
        if (local != null) throw new Error('already started')
        streamOnly = msg.stream === true
        const l = await createLocal({ global: msg.addrs, encryption: encryptionOf(msg), cacheSize: streamOnly ? 0 : CACHE_SIZE })
        await l.ready()
        local = l
        startMs ??= performance.now()
        return { startMs }
      }
      case 'get': {
        const l = started(local)
        lastValue = undefined
        const t0 = performance.now()
        const { bytes, hit } = await getOne(l, msg.cid, msg.size, msg.keep === true)
        return { ms: performance.now() - t0, bytes, hit }
      }
      case 'copy': {
        // The caller's copy, timed apart: `Uint8Array.prototype.slice` always copies into fresh
        // memory (a Buffer's own `slice` would be a view), whatever `Local.get` returned.
        const value = lastValue
        lastValue = undefined
        if (value === undefined) throw new Error('copy: the last get returned no value (streamed, or no get yet)')
        const t0 = performance.now()
        const copy = Uint8Array.prototype.slice.call(value)
        const ms = performance.now() - t0
        if (copy.length !== value.length || copy[copy.length - 1] !== value[value.length - 1]) throw new Error('copy: the copy differs from the value')
        return { ms, bytes: copy.length }
      }
      case 'into': {
        // A caller's buffer for later gets `into` it, touched once (as a buffer reused get
        // after get has been), so those gets cost no fresh memory. Size 0 drops it.
        intoBuffer = msg.size === 0 ? undefined : new Uint8Array(msg.size).fill(1)
        // Dropped: collected now, so the next scenario (Local.put) does not pay for its garbage.
        if (msg.size === 0) gc()
        return { ok: true }
      }
      case 'getInto': {
        const l = started(local)
        if (intoBuffer === undefined) throw new Error('getInto: no buffer (send into first)')
        const hitsBefore = l.stats().hits
        const t0 = performance.now()
        const value = await l.get(msg.cid, { signal, into: intoBuffer })
        const ms = performance.now() - t0
        if (msg.size !== undefined && value.length !== msg.size) throw new Error(`got ${value.length} bytes of ${String(msg.cid)}, expected ${String(msg.size)}`)
        return { ms, bytes: value.length, hit: l.stats().hits > hitsBefore }
      }
      case 'getSeq': {
        const l = started(local)
        const ms: number[] = []
        let bytes = 0
        let hits = 0
        for (const cid of msg.cids as string[]) {
          const t0 = performance.now()
          const r = await getOne(l, cid, msg.size)
          ms.push(performance.now() - t0)
          bytes += r.bytes
          if (r.hit) hits++
        }
        return { ms, bytes, hits }
      }
      case 'getConcurrent': {
        const l = started(local)
        const t0 = performance.now()
        const rs = await Promise.all((msg.cids as string[]).map(async cid => await getOne(l, cid, msg.size)))
        const totalMs = performance.now() - t0
        return { totalMs, bytes: rs.reduce((a, r) => a + r.bytes, 0), hits: rs.filter(r => r.hit).length }
      }
      case 'put': {
        const l = started(local)
        const src = source(msg.size, msg.seed)
        const t0 = performance.now()
        const cid = await l.put(src, { signal })
        return { cid: cid.toString(), ms: performance.now() - t0 }
      }
      case 'prepare': {
        // Generates the value of a later `putPrepared`, so a CPU window around that put holds
        // the put alone (as `put` times it), not the generation of its data.
        prepared = source(msg.size, msg.seed)
        return { ok: true }
      }
      case 'putPrepared': {
        const l = started(local)
        const src = prepared
        prepared = undefined
        if (src === undefined) throw new Error('putPrepared: nothing prepared')
        const t0 = performance.now()
        const cid = await l.put(src, { signal })
        return { cid: cid.toString(), ms: performance.now() - t0 }
      }
      case 'stop': {
        const l = local
        local = undefined
        lastValue = undefined
        await l?.stop()
        return { ok: true }
      }
    }
  }
  throw new Error(`unknown command ${String(msg.cmd)} for a ${role}`)
}

function started<T> (peer: T | undefined): T {
  if (peer == null) throw new Error('not started')
  return peer
}

await serveCommands(handle)
