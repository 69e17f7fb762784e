/**
 * The Prometheus metrics a daemon serves at GET /metrics (docs/HTTP.md, "GET /metrics").
 *
 * Each peer gets its OWN prom-client Registry, never prom-client's default one: a test (or a
 * program) may run a Local and a Global in one process, and two registrations of one name in
 * one registry throw. Pass the same registry to the peer (`metricsRegistry` in LocalOptions /
 * GlobalOptions) and here, and /metrics also carries libp2p's `libp2p_*` series and Node's
 * process metrics (@libp2p/prometheus-metrics collects them into it).
 *
 * Counters that mirror a peer's own counts are read at scrape time (collect callbacks), so they
 * are always current and the peer needs no prom-client code; only the HTTP request counter and
 * the duration histogram are incremented here, by the server.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { GlobalPeer, GlobalSwarmStats } from '../peers/global.js'
import type { LocalPeer } from '../peers/local/index.js'
import type { SwarmStats as LocalSwarmStats } from '../peers/local/swarm-stats.js'
import type { TrafficSnapshot } from '../peers/traffic.js'
import type { StoreOperationStats } from '../core/store/interface.js'
import type { Role } from './backend.js'

/** What the metrics read from the peer at each scrape. */
export interface MetricsSource {
  /** The peer's value traffic (src/peers/traffic.ts). */
  traffic: TrafficSnapshot
  /** When the peer started, ms since the epoch. */
  startedAt: number
  /** A Local's cache. */
  cache?: { hits: number, misses: number, evictions: number, bytes: number, limit: number, entries: number }
  /** A Local: whether its channel to Global is open. */
  globalConnected?: boolean
  /** Global: Locals connected now. */
  locals?: number
  /** Global: values stored and the sum of their sizes. */
  store?: { values: number, bytes: number }
  /** Global: the store's kind (`fs`, `s3`). */
  storeKind?: string
  /** Global on a remote store (S3): requests, errors and retries by operation. */
  storeOperations?: StoreOperationStats
  /** A Local's swarm counters. */
  swarm?: LocalSwarmStats
  /** Global's tracker and egress cap. */
  tracker?: GlobalSwarmStats
}

export interface HttpMetrics {
  readonly registry: Registry
  /** One finished HTTP request. route: a fixed label such as 'ipfs', 'status', 'metrics', 'page', 'other' */
  observeRequest: (method: string, status: number, seconds: number, route: string) => void
  /** Prometheus text; content type below */
  text: () => Promise<string>
  readonly contentType: string
}

export interface MetricsOptions {
  role: Role
  /** Read at every scrape. */
  source: () => MetricsSource
  /** The registry to register into (the one given to the peer as `metricsRegistry`); default a new one. */
  registry?: Registry
  /** For `dstore_build_info`. */
  version?: string
  peerId?: string
}

/** Request-duration buckets, in seconds: from a cached 1 KiB GET (< 1 ms) to a large transfer. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/** HTTP methods kept as label values; any other is counted as `OTHER` (bounded label sets). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'])

/**
 * A new prom-client Registry for one peer: give it to the peer (`metricsRegistry`) and to
 * {@link createMetrics}. (So a caller needs no import of prom-client.)
 */
export function createMetricsRegistry (): Registry {
  return new Registry()
}

/** The metrics of one peer, in their own registry (see the module comment). */
export function createMetrics (options: MetricsOptions): HttpMetrics {
  const registry = options.registry ?? new Registry()
  const { source } = options
  const gauge = (name: string, help: string, read: (s: MetricsSource) => number | undefined): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect () { const v = read(source()); if (v !== undefined) this.set(v) }
    })
  }
  const counter = (name: string, help: string, read: (s: MetricsSource) => number | undefined): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect () { const v = read(source()); this.reset(); if (v !== undefined) this.inc(v) }
    })
  }

  if (options.role === 'local') {
    counter('dstore_cache_hits_total', 'Gets answered from the Local cache.', s => s.cache?.hits)
    counter('dstore_cache_misses_total', 'Gets that went to Global.', s => s.cache?.misses)
    counter('dstore_cache_evictions_total', 'Values dropped from the cache to make room (not deletes).', s => s.cache?.evictions)
    gauge('dstore_cache_bytes', 'Bytes of values in the cache.', s => s.cache?.bytes)
    gauge('dstore_cache_limit_bytes', 'The cache budget in bytes.', s => s.cache?.limit)
    gauge('dstore_cache_entries', 'Values in the cache.', s => s.cache?.entries)
    gauge('dstore_global_connected', '1 when the channel to Global is open, else 0.', s => s.globalConnected === undefined ? undefined : (s.globalConnected ? 1 : 0))
    new Counter({
      name: 'dstore_swarm_bytes_total',
      help: 'Value bytes of swarm downloads, verified, by where they came from (peer: other Locals; global).',
      labelNames: ['source'],
      registers: [registry],
      collect () {
        this.reset()
        const sw = source().swarm
        if (sw === undefined) return
        this.inc({ source: 'peer' }, sw.bytesFromPeers)
        this.inc({ source: 'global' }, sw.bytesFromGlobal)
      }
    })
    counter('dstore_swarm_served_bytes_total', 'Value bytes this Local served to other Locals.', s => s.swarm?.bytesToPeers)
    counter('dstore_swarm_bad_ranges_total', "Ranges from peers that failed verification (each one's peer dropped for that value).", s => s.swarm?.badRanges)
    gauge('dstore_swarm_peers_used', 'Distinct peers that sent this Local a verified range.', s => s.swarm?.peersUsed)
    counter('dstore_swarm_peers_dropped_total', 'Peers dropped as a source of a value (bad bytes, stalled, gone).', s => s.swarm?.peersDropped)
  } else {
    gauge('dstore_store_bytes', 'Bytes of values stored on Global.', s => s.store?.bytes)
    gauge('dstore_store_values', 'Values stored on Global.', s => s.store?.values)
    gauge('dstore_connected_locals', 'Locals connected to Global now.', s => s.locals)
    gauge('dstore_tracker_values', 'Values the tracker knows Local sources for.', s => s.tracker?.values)
    gauge('dstore_tracker_sources', 'Sources (a Local holding or fetching a value) the tracker knows, over every value.', s => s.tracker?.sources)
    counter('dstore_tracker_bad_peer_reports_total', "Locals' reports of a peer whose bytes failed verification (BADPEER).", s => s.tracker?.badPeerReports)
    gauge('dstore_egress_limit_bytes_per_second', "Global's egress cap (--max-egress) in bytes/s; 0 when there is none.", s => s.tracker === undefined ? undefined : s.tracker.egressLimit ?? 0)
    new Gauge({
      name: 'dstore_store_info',
      help: "Always 1; the label names the kind of Global's store (fs, s3).",
      labelNames: ['kind'],
      registers: [registry],
      collect () { this.reset(); const kind = source().storeKind; if (kind !== undefined) this.set({ kind }, 1) }
    })
    // By S3 operation (PutObject, GetObject, ...): a bounded label set, the API's names.
    const byOperation = (name: string, help: string, field: 'requests' | 'errors' | 'retries' | 'notFound'): void => {
      new Counter({
        name,
        help,
        labelNames: ['operation'],
        registers: [registry],
        collect () {
          this.reset()
          for (const [operation, counts] of Object.entries(source().storeOperations ?? {})) this.inc({ operation }, counts[field] ?? 0)
        }
      })
    }
    byOperation('dstore_s3_requests_total', 'Calls Global made to its S3 store, by operation (a call may take several attempts).', 'requests')
    byOperation('dstore_s3_errors_total', 'Calls to the S3 store that failed after their retries, by operation (404s are not errors).', 'errors')
    byOperation('dstore_s3_retries_total', 'Attempts beyond each call\'s first (503 SlowDown, 5xx, network failures), by operation.', 'retries')
    byOperation('dstore_s3_not_found_total', 'Calls to the S3 store answered 404 (a key that is not there), by operation.', 'notFound')
  }
  new Counter({
    name: 'dstore_bytes_received_total',
    help: 'Value bytes received, by source (local: cache fill from global, client puts; global: locals, api).',
    labelNames: ['source'],
    registers: [registry],
    collect () {
      this.reset()
      for (const [k, v] of Object.entries(source().traffic.received)) this.inc({ source: k }, v)
    }
  })
  counter('dstore_bytes_served_total', 'Value bytes served to callers (all sources; /status has them by source).', s => sum(s.traffic.served))
  counter('dstore_verification_failures_total', 'Transfers whose bytes did not verify against their CID.', s => s.traffic.verificationFailures)
  gauge('dstore_uptime_seconds', 'Seconds since the peer started.', s => (Date.now() - s.startedAt) / 1000)
  const info = new Gauge({ name: 'dstore_build_info', help: 'Always 1; labels name the role, version and PeerId.', labelNames: ['role', 'version', 'peer_id'], registers: [registry] })
  info.set({ role: options.role, version: options.version ?? 'unknown', peer_id: options.peerId ?? '' }, 1)

  const requests = new Counter({
    name: 'dstore_http_requests_total',
    help: 'HTTP requests answered, by method and status code.',
    labelNames: ['method', 'status'],
    registers: [registry]
  })
  const duration = new Histogram({
    name: 'dstore_http_request_duration_seconds',
    help: 'Time from a request to the end of its answer, by method and route.',
    labelNames: ['method', 'route'],
    buckets: DURATION_BUCKETS,
    registers: [registry]
  })

  return {
    registry,
    contentType: registry.contentType,
    observeRequest (method, status, seconds, route) {
      const m = METHODS.has(method) ? method : 'OTHER'
      requests.inc({ method: m, status: String(status) })
      duration.observe({ method: m, route }, seconds)
    },
    async text () { return await registry.metrics() }
  }
}

/** The {@link MetricsSource} of a Local. */
export function localMetricsSource (local: LocalPeer): () => MetricsSource {
  return () => {
    const s = local.stats()
    return {
      traffic: local.traffic(),
      startedAt: local.startedAt,
      cache: { hits: s.hits, misses: s.misses, evictions: s.evictions, bytes: s.cacheBytes, limit: s.cacheSize, entries: s.cacheEntries },
      globalConnected: s.connected,
      swarm: s.swarm
    }
  }
}

/** The {@link MetricsSource} of a Global. */
export function globalMetricsSource (global: GlobalPeer): () => MetricsSource {
  return () => {
    const s = global.stats()
    return {
      traffic: global.traffic(),
      startedAt: global.startedAt,
      locals: s.locals,
      tracker: s.swarm,
      store: global.storeUsage(),
      storeKind: global.store.kind,
      storeOperations: global.store.operationStats?.()
    }
  }
}

function sum (by: Partial<Record<string, number>>): number {
  let n = 0
  for (const v of Object.values(by)) n += v ?? 0
  return n
}
