/**
 * Bounds on inbound connections that have not finished their handshake (encryption and muxer
 * selection), as a libp2p connection gater.
 *
 * Why: libp2p refuses every new inbound connection once `maxIncomingPendingConnections` are
 * mid-handshake, and keeps an idle one for `inboundUpgradeTimeout`. So anyone who opens a few
 * hundred TCP sockets and sends nothing locked every new client out for as long as they held
 * them (measured: 300 idle sockets, every `dstore` command failed). Here instead:
 *
 * - a handshake has {@link ConnectionLimits.handshakeTimeout} to finish (libp2p's upgrade timeout);
 * - one remote IP (an IPv6 /64) has at most {@link ConnectionLimits.maxPendingPerIp} pending
 *   connections, and all sources together {@link ConnectionLimits.maxPending};
 * - when either is full, the new connection is admitted and the OLDEST pending one (of that IP,
 *   or of all) is closed. An honest client finishes its handshake in milliseconds, so it is never
 *   the oldest; a socket that sends nothing always is. Refusing the new one instead would hand
 *   the slots to whoever took them first, and every client on one machine shares 127.0.0.1.
 *
 * Connections past the handshake are not counted here: they have an authenticated PeerId and
 * Global caps them per peer (`maxConnectionsPerPeer`), libp2p in all (`maxConnections`).
 */
import type { ConnectionGater, MultiaddrConnection } from '@libp2p/interface'
import { ConfigError } from '../core/errors.js'

/** Limits on inbound connections still in their handshake. */
export interface ConnectionLimits {
  /**
   * Milliseconds an inbound connection gets to finish encryption and muxer selection; then it
   * is closed. An honest client needs milliseconds.
   * @default 3000
   */
  handshakeTimeout: number
  /**
   * Pending inbound connections from one IPv4 address or IPv6 /64 (loopback included: each of
   * 127.0.0.1, 127.0.0.2, ::1 is one source). A new one past it closes that source's oldest.
   * @default 64
   */
  maxPendingPerIp: number
  /**
   * Pending inbound connections from all sources. A new one past it closes the oldest of all.
   * @default 256
   */
  maxPending: number
}

/** The defaults of {@link ConnectionLimits} (`dstore global --help` prints them from here). */
export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = Object.freeze({
  handshakeTimeout: 3_000,
  maxPendingPerIp: 64,
  maxPending: 256
})

/** Fills in the defaults and checks each value (ConfigError on a bad one). */
export function connectionLimits (options: Partial<ConnectionLimits> = {}): ConnectionLimits {
  const limits = { ...DEFAULT_CONNECTION_LIMITS }
  for (const key of Object.keys(DEFAULT_CONNECTION_LIMITS) as Array<keyof ConnectionLimits>) {
    const value = options[key]
    if (value === undefined) continue
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ConfigError(`${key} must be a whole number of at least 1, not ${String(value)}`)
    }
    limits[key] = value
  }
  if (limits.maxPendingPerIp > limits.maxPending) limits.maxPendingPerIp = limits.maxPending
  return limits
}

/** The reason a pending connection is closed to make room; only libp2p's debug log shows it. */
export class HandshakeEvictedError extends Error {
  static override name = 'HandshakeEvictedError'
  override name = 'HandshakeEvictedError'
}

/** Counters, for logs and tests. */
export interface PendingStats {
  /** Inbound connections in their handshake now. */
  pending: number
  /** Pending connections closed to make room for a newer one (per-IP or overall). */
  evicted: number
}

/**
 * Tracks inbound connections from their first byte to the end of their handshake and evicts
 * the oldest when a limit is reached. Install it with {@link PendingConnections.gater}.
 */
export class PendingConnections {
  /** Pending connections, oldest first (a Map keeps insertion order), with their source. */
  private readonly pending = new Map<MultiaddrConnection, string>()
  /** The same connections by source, oldest first. */
  private readonly bySource = new Map<string, Set<MultiaddrConnection>>()
  private evicted = 0

  constructor (readonly limits: ConnectionLimits = connectionLimits()) {}

  /** The gater libp2p calls at each stage of an inbound upgrade; it never denies. */
  gater (): ConnectionGater {
    return {
      denyInboundConnection: (maConn) => { this.admit(maConn); return false },
      denyInboundUpgradedConnection: (_peer, maConn) => { this.remove(maConn); return false }
    }
  }

  stats (): PendingStats {
    return { pending: this.pending.size, evicted: this.evicted }
  }

  private admit (maConn: MultiaddrConnection): void {
    // Gone already (the peer hung up): no close event will come to remove it.
    if (maConn.status !== 'open') return
    const source = sourceOf(maConn)
    const same = this.bySource.get(source)
    if (same != null && same.size >= this.limits.maxPendingPerIp) this.evict(same.values().next().value!)
    if (this.pending.size >= this.limits.maxPending) this.evict(this.pending.keys().next().value!)
    this.pending.set(maConn, source)
    let set = this.bySource.get(source)
    if (set == null) this.bySource.set(source, set = new Set())
    set.add(maConn)
    // A handshake that fails or times out ends in a close, and so does an evicted one.
    maConn.addEventListener('close', () => { this.remove(maConn) }, { once: true })
  }

  private evict (maConn: MultiaddrConnection): void {
    this.remove(maConn)
    this.evicted++
    maConn.abort(new HandshakeEvictedError('closed to make room for a newer connection: the oldest still in its handshake'))
  }

  private remove (maConn: MultiaddrConnection): void {
    const source = this.pending.get(maConn)
    if (source === undefined) return
    this.pending.delete(maConn)
    const set = this.bySource.get(source)
    set?.delete(maConn)
    if (set?.size === 0) this.bySource.delete(source)
  }
}

/**
 * The source a connection is counted under: its IPv4 address (IPv4-mapped IPv6 included), `::1`,
 * the /64 of any other IPv6 address (one host usually has a whole /64), or `other` (e.g. a unix
 * socket).
 */
export function sourceOf (maConn: Pick<MultiaddrConnection, 'remoteAddr'>): string {
  for (const c of maConn.remoteAddr.getComponents()) {
    if (c.name === 'ip4' && c.value != null) return c.value
    if (c.name === 'ip6' && c.value != null) return ipv6Source(c.value)
  }
  return 'other'
}

function ipv6Source (ip: string): string {
  const groups = expandIpv6(ip.split('%')[0])
  if (groups == null) return ip
  // IPv4-mapped (::ffff:a.b.c.d, what a dual-stack listener sees for IPv4 clients): the IPv4 address.
  if (groups.slice(0, 5).every(g => g === 0) && groups[5] === 0xffff) {
    return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join('.')
  }
  if (groups.slice(0, 7).every(g => g === 0) && groups[7] === 1) return '::1'
  return groups.slice(0, 4).map(g => g.toString(16)).join(':') + '::/64'
}

/** The eight 16-bit groups of an IPv6 address (with `::` and a dotted IPv4 tail), or undefined. */
function expandIpv6 (ip: string): number[] | undefined {
  const halves = ip.split('::')
  if (halves.length > 2) return undefined
  const parse = (part: string): number[] => {
    const out: number[] = []
    for (const g of part === '' ? [] : part.split(':')) {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number)
        out.push((a << 8) | b, (c << 8) | d)
      } else {
        out.push(parseInt(g, 16))
      }
    }
    return out
  }
  const head = parse(halves[0])
  const tail = halves.length === 2 ? parse(halves[1]) : []
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0
  const groups = [...head, ...Array<number>(Math.max(0, fill)).fill(0), ...tail]
  return groups.length === 8 && groups.every(g => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined
}
