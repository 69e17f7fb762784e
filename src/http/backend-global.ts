/**
 * The HttpBackend of a Global: its filesystem store, read directly (every value is there, so
 * `cached` is always true), written through the Global (so a delete evicts every Local's copy).
 */
import type { CID } from 'multiformats/cid'
import { NotFoundError } from '../core/errors.js'
import { encodeRange, encodedRangeLength } from '../core/bao/index.js'
import type { GlobalPeer } from '../peers/global.js'
import { capped } from '../protocol/egress.js'
import type { HttpBackend } from './backend.js'
import { globalStatus } from './status.js'

export interface GlobalBackendInfo {
  /** dstore's version, for /status. */
  version?: string
  /** The server's URL, for /status (a function: the URL is known only once the server listens). */
  url?: string | (() => string | undefined)
}

/** Serves `global` over HTTP. */
export function globalBackend (global: GlobalPeer, info: GlobalBackendInfo = {}): HttpBackend {
  const store = global.store
  return {
    role: 'global',
    stat: async (cid, options) => {
      // A copy found corrupt (and not yet replaced) is not served: as on the libp2p side, it is absent.
      if (store.isSuspect(cid)) throw new NotFoundError(`${cid.toString()} is stored but failed a re-check; it is not served until replaced`)
      return { size: (await store.stat(cid, options)).size, cached: true }
    },
    // Through the Global, which counts what it serves (status, metrics).
    // Held to the Global's egress cap, as the libp2p side is.
    cat: (cid, range, options) => capped(global.cat(cid, { ...range, signal: options?.signal }), global.swarm.egress, options?.signal),
    encoded: async (cid, range, options) => {
      const { size } = await store.stat(cid, options)
      const length = encodedRangeLength(size, range)
      // Opened lazily, on the first read, and closed when the stream ends or is abandoned.
      async function * stream (): AsyncGenerator<Uint8Array> {
        const outboard = await store.outboard(cid, options)
        const reader = await store.open(cid, options)
        try {
          yield * encodeRange(reader, outboard, range, undefined, { signal: options?.signal })
        } finally {
          await reader.close()
        }
      }
      return { size, length, stream: capped(stream(), global.swarm.egress, options?.signal) }
    },
    put: async (source, options) => await global.put(source, options),
    delete: async (cid, options) => await global.delete(cid, options),
    list: (options) => (async function * () {
      for await (const { cid, size } of global.list(options)) yield { cid, size }
    })(),
    missing: async (cids: CID[], options) => {
      const absent: CID[] = []
      for (const cid of cids) if (store.isSuspect(cid) || !await store.has(cid, options)) absent.push(cid)
      return absent
    },
    status: async () => await globalStatus(global, { version: info.version ?? 'unknown', url: typeof info.url === 'function' ? info.url() : info.url })
  }
}
