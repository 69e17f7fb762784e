/**
 * dstore: a content-addressed, two-layer blob store.
 *
 * This entry point loads the runtime shim first (libp2p needs `Promise.withResolvers`, which
 * Node 20 lacks), then exposes the core: keys, BLAKE3 tree hashing, verified streaming and the
 * blob stores. The libp2p peers (`createGlobal`, `createLocal`) build on these.
 *
 * @example
 * ```ts
 * import { cidOfBytes, createMemoryStore } from 'dstore'
 *
 * const cache = createMemoryStore({ maxBytes: 64 << 20 })
 * const cid = await cache.put(new TextEncoder().encode('hello'))
 * console.log(cid.toString(), cid.equals(cidOfBytes(new TextEncoder().encode('hello'))))
 * ```
 */
import './runtime-shim.js'

export * from './core/errors.js'
export * from './core/cid.js'
export { hash as blake3Hash } from './core/blake3/index.js'
export { TreeHasher, DEFAULT_GROUP_LOG, outboardLength } from './core/tree.js'
export type { TreeResult, TreeHasherOptions } from './core/tree.js'
export * from './core/bao/index.js'
export type * from './core/store/interface.js'
export { createMemoryStore, MemoryBlobStore } from './core/store/memory.js'
export { createFsStore, FsBlobStore } from './core/store/fs.js'
export { createGlobal, GlobalPeer } from './peers/global.js'
export type { GlobalOptions, GlobalStats } from './peers/global.js'
export { createLocal, LocalPeer } from './peers/local.js'
export type { LocalOptions, LocalStats, CallOptions, CatOptions, PutSource } from './peers/local.js'
export type { Encryption } from './peers/node.js'
export { RPC_PROTOCOL, BLOB_PROTOCOL } from './protocol/constants.js'
