/**
 * dstore: a content-addressed, two-layer blob store on libp2p.
 *
 * A **Global** peer pins values on disk and serves them; **Local** peers cache values in a
 * bounded LRU and fetch from Global with BLAKE3 verified streaming. Keys are BLAKE3 CIDs.
 * This entry point loads the runtime shim first (libp2p needs `Promise.withResolvers`, which
 * Node 20 lacks).
 *
 * @example
 * ```ts
 * import { createGlobal, createLocal } from 'dstore'
 *
 * const global = await createGlobal({ repo: './global-repo' })
 * const local = await createLocal({ global: global.multiaddrs })
 *
 * const cid = await local.put(new TextEncoder().encode('hello dstore'))
 * const bytes = await local.get(cid)            // verified, now cached
 * console.log(cid.toString(), new TextDecoder().decode(bytes))
 * for await (const piece of local.cat(cid, { offset: 6, length: 6 })) console.log(piece)
 *
 * await local.delete(cid)                       // gone from Global and every Local's cache
 * await local.stop()
 * await global.stop()
 * ```
 */
import './runtime-shim.js'

import { blake3 as blake3Backend } from './core/blake3/index.js'
export * from './core/errors.js'
export * from './core/cid.js'
export { hash as blake3Hash } from './core/blake3/index.js'
/** The BLAKE3 backend in use: `native-simd<N>` (the addon), `wasm-simd` or `js` (src/core/blake3/index.ts). */
export const BLAKE3_BACKEND: string = blake3Backend.name
export { TreeHasher, DEFAULT_GROUP_LOG, outboardLength } from './core/tree.js'
export type { TreeResult, TreeHasherOptions } from './core/tree.js'
export * from './core/bao/index.js'
export type * from './core/store/interface.js'
export { createMemoryStore, MemoryBlobStore } from './core/store/memory.js'
export { createFsStore, FsBlobStore } from './core/store/fs.js'
export { createS3Store, S3BlobStore, verifyS3Store, DEFAULT_STAGING_MAX_AGE } from './core/store/s3.js'
export type { S3StoreOptions, S3VerifyOptions, S3VerifyProblem, S3VerifyReport, StagingCleanReport } from './core/store/s3.js'
export { createGlobal, GlobalPeer } from './peers/global.js'
export type { GlobalOptions, GlobalStats, GlobalSwarmStats } from './peers/global.js'
export { WRITERS_FILE, READERS_FILE } from './peers/access.js'
export { repoPeerId } from './peers/identity.js'
export { tuneGcForServing, SERVING_HEAP_GROWING_PERCENT } from './peers/serving-gc.js'
export type { AccessLists, Access } from './peers/access.js'
export { createLocal, LocalPeer } from './peers/local/index.js'
export type { LocalOptions, LocalStats, CallOptions, CatOptions, LocalGetOptions, LocalPutOptions, PutSource } from './peers/local/index.js'
export type { SwarmStats as LocalSwarmStats } from './peers/local/swarm-stats.js'
export type { Encryption } from './peers/node.js'
export { DEFAULT_CONNECTION_LIMITS } from './peers/conn-limits.js'
export type { ConnectionLimits } from './peers/conn-limits.js'
export { RPC_PROTOCOL, BLOB_PROTOCOL } from './protocol/constants.js'
export { MIN_EGRESS } from './protocol/egress.js'
export { connectLocal, LocalClient, DSTORE_BAO_TYPE } from './http/client.js'
export type { ConnectLocalOptions, ClientStat } from './http/client.js'
export { startHttpServer, isLoopbackHost } from './http/server.js'
export type { HttpServer, HttpServerOptions, HttpMetrics } from './http/server.js'
export { globalBackend } from './http/backend-global.js'
export type { GlobalBackendInfo } from './http/backend-global.js'
export { localBackend, minimalLocalStatus } from './http/backend-local.js'
export type { LocalBackendOptions } from './http/backend-local.js'
export type { HttpBackend, BackendStat, EncodedRange, BackendPutOptions, Role } from './http/backend.js'
export { createMetrics, createMetricsRegistry, localMetricsSource, globalMetricsSource, DURATION_BUCKETS } from './http/metrics.js'
export type { MetricsOptions, MetricsSource } from './http/metrics.js'
export { localStatus, globalStatus } from './http/status.js'
export type { StatusInfo, StatusTransfer } from './http/status.js'
export { STATUS_PAGE_HTML, STATUS_PAGE_CSP } from './http/status-page.js'
export type { ConnectedLocal } from './peers/global.js'
export type { TrafficSnapshot, TransferRecord, TransferSource } from './peers/traffic.js'
