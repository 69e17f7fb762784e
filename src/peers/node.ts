/**
 * libp2p node assembly for both roles: TCP, TLS 1.3 and/or noise, yamux, identify and ping.
 * Nothing is dialled but what the caller asks for: no bootstrap list, no mDNS, no DHT, no
 * relay, no UPnP. The runtime shim must be loaded before this module (entry points do that).
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tls } from '@libp2p/tls'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import type { PrivateKey } from '@libp2p/interface'
import type { Registry } from 'prom-client'
import { connectionLimits, PendingConnections, type ConnectionLimits } from './conn-limits.js'
import { installYamuxWindowRule } from './yamux-window.js'

/** Connection encryption. With both, the dialer's order wins when the listener supports both. */
export type Encryption = 'tls' | 'noise'

export const DEFAULT_ENCRYPTION: Encryption[] = ['tls', 'noise']

/** Shortest and longest time libp2p's connection monitor waits for a ping before it aborts the connection. */
export const PING_TIMEOUT_MIN_MS = 45_000
export const PING_TIMEOUT_MAX_MS = 60_000
/** Ping streams at once per connection, each way: a ping every 10 s, each waiting up to {@link PING_TIMEOUT_MAX_MS}. */
const PING_STREAMS = 8

export interface NodeOptions {
  privateKey?: PrivateKey
  /** Multiaddrs to listen on; none for a dial-only node. */
  listen?: string[]
  /** Encrypters in order of preference. */
  encryption?: Encryption[]
  /** Limits on inbound connections still in their handshake; see {@link ConnectionLimits}. */
  limits?: Partial<ConnectionLimits>
  /**
   * A prom-client registry for libp2p's own metrics (`libp2p_*`, plus Node's process metrics),
   * through @libp2p/prometheus-metrics. None by default: no metrics are collected.
   */
  metricsRegistry?: Registry
}

export type DstoreNode = Libp2p<{ identify: ReturnType<ReturnType<typeof identify>>, ping: ReturnType<ReturnType<typeof ping>> }>

export async function createNode (options: NodeOptions): Promise<DstoreNode> {
  const encryption = options.encryption ?? DEFAULT_ENCRYPTION
  if (encryption.length === 0) throw new TypeError('at least one encryption is needed')
  const encrypters = encryption.map(e => {
    if (e === 'tls') return tls()
    if (e === 'noise') return noise()
    throw new TypeError(`unknown encryption ${String(e)}: use "tls" or "noise"`)
  })
  const limits = connectionLimits(options.limits)
  const pending = new PendingConnections(limits)
  // Window updates at half the window instead of after every frame (see yamux-window.ts).
  installYamuxWindowRule()
  return await createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: options.listen ?? [] },
    transports: [tcp()],
    connectionEncrypters: encrypters,
    streamMuxers: [yamux()],
    // The connection monitor pings every 10 s and waits up to a minute (below), so pings may
    // overlap: with libp2p's one outbound ping stream, the second failed at once (too many
    // streams), and the monitor aborted the connection for it, mid-transfer.
    services: { identify: identify(), ping: ping({ maxOutboundStreams: PING_STREAMS, maxInboundStreams: PING_STREAMS }) },
    // Into the peer's own registry. @libp2p/prometheus-metrics caches metric objects by name in
    // one module-wide map: without clearing it (preserveExistingMetrics false, which also clears
    // prom-client's default registry, not used by dstore) a second peer in this process would
    // get the first one's objects, registered in the first one's registry.
    metrics: options.metricsRegistry === undefined ? undefined : prometheusMetrics({ registry: options.metricsRegistry, preserveExistingMetrics: false }),
    // Evicts the oldest handshakes when one source, or all, has too many (see conn-limits.ts).
    connectionGater: pending.gater(),
    // A ping waits behind whatever the connection already has queued: on a saturated link shared
    // by many transfers (a swarm, a flash crowd at Global) that is many seconds, and libp2p's
    // default of aborting after 5 s cut healthy connections mid-transfer (bench/swarm.ts saw 50
    // at once). A dead peer is still found, within a minute; a transfer that stops moving is cut
    // sooner by dstore's own progress timeout (MIN_TRANSFER_PROGRESS per requestTimeout).
    connectionMonitor: { pingTimeout: { minTimeout: PING_TIMEOUT_MIN_MS, maxTimeout: PING_TIMEOUT_MAX_MS } },
    connectionManager: {
      // Many Locals may (re)connect at once after a Global restart; libp2p's default of 5 new
      // inbound connections per second per host would refuse them.
      inboundConnectionThreshold: 1000,
      inboundUpgradeTimeout: limits.handshakeTimeout,
      // libp2p refuses new connections (before the gater sees them) at this count; the gater
      // keeps the count at maxPending, and the headroom covers evicted connections whose
      // upgrade has not unwound yet.
      maxIncomingPendingConnections: limits.maxPending * 2
    }
  }) as unknown as DstoreNode
}
