/**
 * The JSON document GET /status answers (docs/HTTP.md, "GET /status"), built from a peer's own
 * counters: one shape for both roles, with `cache` and `global` on a Local and `store` and
 * `locals` on Global, and `swarm` on both (LocalStats.swarm, GlobalStats.swarm). Numbers are plain JSON numbers (bytes, counts, seconds); times are ISO 8601.
 */
import type { GlobalPeer } from '../peers/global.js'
import type { LocalPeer } from '../peers/local/index.js'
import type { TrafficSnapshot, TransferRecord } from '../peers/traffic.js'

/** What the daemon knows and the peer does not. */
export interface StatusInfo {
  /** dstore's version (package.json). */
  version: string
  /** The URL the HTTP server listens on, if known. */
  url?: string
}

/** One recent transfer as /status shows it. */
export interface StatusTransfer {
  cid: string
  op: 'get' | 'put'
  source: string
  bytes: number
  /** Wall time in seconds. */
  seconds: number
  /** bytes / seconds; null when it took under 1 ms (no meaningful rate). */
  bytesPerSecond: number | null
  at: string
  ok: boolean
}

/** The fields both roles' documents start with. */
function identity (role: 'local' | 'global', peer: { peerId: string, startedAt: number }, info: StatusInfo): Record<string, unknown> {
  return {
    role,
    peerId: peer.peerId,
    version: info.version,
    url: info.url ?? null,
    startedAt: new Date(peer.startedAt).toISOString(),
    uptimeSeconds: uptime(peer.startedAt)
  }
}

/** The /status document of a Local. */
export async function localStatus (local: LocalPeer, info: StatusInfo): Promise<Record<string, unknown>> {
  const s = local.stats()
  const t = local.traffic()
  const lookups = s.hits + s.misses
  return {
    ...identity('local', local, info),
    global: { connected: s.connected, addrs: local.globalAddrs, count: s.globals, connectedCount: s.globalsConnected },
    cache: {
      bytes: s.cacheBytes,
      limit: s.cacheSize,
      entries: s.cacheEntries,
      hits: s.hits,
      misses: s.misses,
      hitRate: lookups === 0 ? null : s.hits / lookups,
      evictions: s.evictions,
      invalidations: s.invalidations
    },
    bytes: bytes(t),
    // Bytes on the wire to and from Global (values, verification trees and rpc messages).
    wire: { fromGlobal: s.bytesIn, toGlobal: s.bytesOut },
    verificationFailures: t.verificationFailures,
    // LocalStats.swarm as it is: bytes from peers and from Global, served to peers, bad ranges.
    swarm: { ...s.swarm, addrs: [...s.swarm.addrs] },
    recentTransfers: t.recent.map(transfer)
  }
}

/** The /status document of a Global. */
export async function globalStatus (global: GlobalPeer, info: StatusInfo): Promise<Record<string, unknown>> {
  const s = global.stats()
  const t = global.traffic()
  const locals = global.connectedLocals()
  return {
    ...identity('global', global, info),
    multiaddrs: global.multiaddrs,
    store: storeStatus(global),
    locals: {
      count: locals.length,
      connected: locals.map(l => ({ peerId: l.peerId, addr: l.addr, since: new Date(l.since).toISOString() }))
    },
    bytes: bytes(t),
    wire: { fromLocals: s.bytesIn, toLocals: s.bytesOut },
    verificationFailures: t.verificationFailures,
    evictions: { confirmed: s.evictionsConfirmed, timedOut: s.evictionsTimedOut },
    rechecks: { done: s.rechecks, failed: s.rechecksFailed, pending: s.rechecksPending },
    // GlobalStats.swarm: the tracker's values and sources, BADPEER reports, the egress cap.
    swarm: { ...s.swarm },
    recentTransfers: t.recent.map(transfer)
  }
}

/**
 * The store's kind and usage; for a store behind a remote service (S3), its requests, errors and
 * retries by operation, and their sums.
 */
function storeStatus (global: GlobalPeer): Record<string, unknown> {
  const usage = global.storeUsage()
  const ops = global.store.operationStats?.()
  const out: Record<string, unknown> = { kind: global.store.kind, values: usage.values, bytes: usage.bytes }
  if (ops !== undefined) {
    const total = { requests: 0, errors: 0, retries: 0, notFound: 0 }
    const operations: Record<string, { requests: number, errors: number, retries: number, notFound: number }> = {}
    for (const name of Object.keys(ops).sort()) {
      const { requests, errors, retries, notFound = 0 } = ops[name]
      operations[name] = { requests, errors, retries, notFound }
      total.requests += requests
      total.errors += errors
      total.retries += retries
      total.notFound += notFound
    }
    out.requests = { ...total, operations }
  }
  return out
}

function bytes (t: TrafficSnapshot): { received: Record<string, number>, served: Record<string, number> } {
  return { received: { ...t.received } as Record<string, number>, served: { ...t.served } as Record<string, number> }
}

function transfer (r: TransferRecord): StatusTransfer {
  const seconds = r.ms / 1000
  return {
    cid: r.cid,
    op: r.op,
    source: r.source,
    bytes: r.bytes,
    seconds,
    bytesPerSecond: r.ms < 1 ? null : Math.round(r.bytes / seconds),
    at: new Date(r.at).toISOString(),
    ok: r.ok
  }
}

function uptime (startedAt: number): number {
  return Math.round((Date.now() - startedAt) / 100) / 10
}
