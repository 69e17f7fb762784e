/**
 * What a Local is configured with and what its calls accept, and the checks that turn a wrong
 * argument into one {@link ArgumentError} before anything is dialled, read or sent.
 */
import { stat } from 'node:fs/promises'
import { multiaddr, isMultiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { CIDLike } from '../../core/cid.js'
import { ArgumentError } from '../../core/errors.js'
import type { CallOptions, ProgressEvent } from '../../core/store/interface.js'
import type { Encryption } from '../node.js'
import type { SwarmStats } from './swarm-stats.js'
import type { Registry } from 'prom-client'

export type { CallOptions, SwarmStats }

export interface LocalOptions {
  /**
   * Global's multiaddr(s), each with `/p2p/<peerId>`. Addresses with different `/p2p/` ids are
   * different Globals (which must serve one store): requests are spread across them by
   * rendezvous hashing on the CID, and fail over when one goes away. Addresses with the same id
   * are one Global's addresses.
   */
  global: string | Multiaddr | Array<string | Multiaddr>
  /**
   * Cache budget in bytes. A get caches a value up to the whole budget; a put keeps one for the
   * cache only up to a quarter of it (a larger one is not cached, so not served to peers, and a
   * get of it goes to Global).
   * @default 268435456 (256 MiB)
   */
  cacheSize?: number
  /** Folder for a persistent identity (`local.key`); without it the identity is new each start. */
  repo?: string
  /** Encrypters in order of preference; default TLS 1.3, then noise. */
  encryption?: Encryption[]
  /**
   * How long a call waits for a connection to Global, in ms.
   * @default 10000
   */
  connectTimeout?: number
  /**
   * How long a request or transfer may go without progress, in ms.
   * @default 30000
   */
  requestTimeout?: number
  /**
   * How often, in ms, every cached CID is re-checked with a Global (values it no longer has are
   * dropped; the whole cache when no Global answers). Bounds how long a deleted value can be
   * served when its EVICT was lost (docs/SECURITY.md). 0 turns it off.
   * @default 60000
   */
  recheckInterval?: number
  /**
   * A prom-client registry to collect libp2p's metrics (`libp2p_*`) into; the HTTP daemon's
   * /metrics serves it (src/http/metrics.ts). None by default.
   */
  metricsRegistry?: Registry
  /**
   * Multiaddrs to listen on for other Locals (the swarm: this Local serves them verified ranges
   * of what it holds, docs/PROTOCOL.md "Local-to-Local serving"). None serves nobody.
   * @default []
   */
  listen?: string[]
  /**
   * The swarm: serve peers (with `listen`), announce holdings to Global, and fetch large values
   * from other Locals. False is the Local without any of it.
   * @default true
   */
  swarm?: boolean
  /**
   * Test-only hooks that make this Local misbehave on purpose, to test its peers. Never set
   * them outside tests (the CLI has no way to).
   */
  unsafeTestHooks?: UnsafeTestHooks
}

/** Test-only misbehaviour of a Local (see {@link LocalOptions.unsafeTestHooks}). */
export interface UnsafeTestHooks {
  /** The serving path flips a data byte of every read it serves to a peer, so at least one in every range (a lying Local). */
  flipServedByte?: boolean
}

export interface CatOptions extends CallOptions {
  /** First byte; default 0. */
  offset?: number
  /** Number of bytes; default to the end. */
  length?: number
  /**
   * For a whole value on a miss (no offset, no length): stream it as it is verified AND cache it
   * once complete, if it fits the cache, in one transfer shared with concurrent gets and
   * readers (what a caching server wants: the first byte goes out at once, the next request is
   * a hit). That transfer runs at Global's pace, not the reader's (its pieces are kept for the
   * cache), and a channel that breaks mid-way restarts it, the reader resuming where it was.
   * A value larger than the cache streams as without `fill`. Default false.
   */
  fill?: boolean
}

export interface LocalGetOptions extends CallOptions {
  /**
   * A buffer of the caller's own to write the value into (at its start) instead of a fresh
   * one; the get returns the view of the value's bytes in it. Not read or written by the caller
   * until the get settles; zeroed where written if the get fails; not cached. A value larger
   * than it is refused (TooLargeError); one sharing bytes with the `into` of another get still
   * in flight is refused too (ArgumentError). See `LocalPeer.get`.
   */
  into?: Uint8Array
}

export interface LocalPutOptions extends CallOptions {
  /**
   * The CID the value must hash to. When given, Global is asked first and, if it holds that
   * value, nothing is read from the source or sent (a peer that may only read can then "put"
   * a value Global has). Otherwise the value is sent, and one that hashes to anything else is
   * refused with `VerificationError`.
   */
  expected?: CIDLike
}

export interface LocalStats {
  /** Gets answered from the cache. */
  hits: number
  /** Gets that went to Global. */
  misses: number
  /** Values dropped from the cache to make room (not deletes). */
  evictions: number
  /** Values removed because Global deleted them (EVICT notices and reconciliation). */
  invalidations: number
  /** Bytes received from and sent to Global. */
  bytesIn: number
  bytesOut: number
  /** Bytes and values in the cache, and its budget. */
  cacheBytes: number
  cacheEntries: number
  cacheSize: number
  /** Whether the rpc channel to Global (to at least one, with several) is open now. */
  connected: boolean
  /** Globals configured, and those whose channel is open now. */
  globals: number
  globalsConnected: number
  /** Periodic re-checks of the cache done, and those that reached no Global (the cache was dropped). */
  rechecks: number
  recheckFailures: number
  /** The swarm: whether it is on, where peers dial this Local, bytes from and to peers. */
  swarm: SwarmStats
}

export const DEFAULT_CACHE = 256 * 1024 * 1024
export const DEFAULT_CONNECT_TIMEOUT = 10_000

/** The options of `createLocal`, checked; Global's addresses parsed. @throws {ArgumentError} */
export async function checkLocalOptions (options: LocalOptions): Promise<Multiaddr[]> {
  if (options === null || typeof options !== 'object') throw new ArgumentError('createLocal needs an options object ({ global })')
  if (options.global == null) throw new ArgumentError('createLocal needs the multiaddr of a Global ({ global })')
  const list = Array.isArray(options.global) ? options.global : [options.global]
  if (list.length === 0) throw new ArgumentError('createLocal needs the multiaddr of a Global ({ global })')
  const addrs = list.map(a => {
    if (isMultiaddr(a)) return a
    if (typeof a !== 'string') throw new ArgumentError(`global: expected a multiaddr string or Multiaddr, got ${describe(a)}`)
    try {
      return multiaddr(a)
    } catch (err) {
      throw new ArgumentError(`global: ${JSON.stringify(a.slice(0, 200))} is not a multiaddr (${(err as Error).message})`, { cause: err })
    }
  })
  checkCount('cacheSize', options.cacheSize, 0)
  checkCount('connectTimeout', options.connectTimeout, 1)
  checkCount('requestTimeout', options.requestTimeout, 1)
  checkCount('recheckInterval', options.recheckInterval, 0)
  if (options.repo !== undefined) {
    if (typeof options.repo !== 'string' || options.repo === '') throw new ArgumentError(`repo: expected a folder path, got ${describe(options.repo)}`)
    // A path that is a file would fail later, inside the identity code, as a raw EEXIST.
    const st = await stat(options.repo).catch(() => undefined)
    if (st !== undefined && !st.isDirectory()) throw new ArgumentError(`repo: ${options.repo} exists and is not a folder`)
  }
  if (options.listen !== undefined) {
    const listen: unknown = options.listen
    if (!Array.isArray(listen)) throw new ArgumentError(`listen: expected an array of multiaddr strings, got ${describe(listen)}`)
    for (const a of listen) {
      if (typeof a !== 'string') throw new ArgumentError(`listen: expected multiaddr strings, got ${describe(a)}`)
      try {
        multiaddr(a)
      } catch (err) {
        throw new ArgumentError(`listen: ${JSON.stringify(a.slice(0, 200))} is not a multiaddr (${(err as Error).message})`, { cause: err })
      }
    }
  }
  if (options.swarm !== undefined && typeof options.swarm !== 'boolean') throw new ArgumentError(`swarm: expected a boolean, got ${describe(options.swarm)}`)
  if (options.unsafeTestHooks !== undefined) {
    const hooks: unknown = options.unsafeTestHooks
    if (hooks === null || typeof hooks !== 'object') throw new ArgumentError(`unsafeTestHooks: expected an object, got ${describe(hooks)}`)
    const flip = (hooks as UnsafeTestHooks).flipServedByte
    if (flip !== undefined && typeof flip !== 'boolean') throw new ArgumentError(`unsafeTestHooks.flipServedByte: expected a boolean, got ${describe(flip)}`)
  }
  if (options.encryption !== undefined) {
    const enc: unknown = options.encryption
    if (!Array.isArray(enc) || enc.length === 0 || !enc.every(e => e === 'tls' || e === 'noise')) {
      throw new ArgumentError(`encryption: expected a non-empty array of "tls" and "noise", got ${Array.isArray(enc) ? JSON.stringify(enc).slice(0, 100) : describe(enc)}`)
    }
  }
  return addrs
}

/**
 * A call's options, checked: an object with an AbortSignal and a function, if any. The
 * returned options report progress through {@link guardProgress}. @throws {ArgumentError}
 */
export function checkCallOptions<T extends CallOptions> (options: T | undefined): T {
  if (options === undefined) return {} as unknown as T
  if (options === null || typeof options !== 'object') throw new ArgumentError(`options: expected an object, got ${describe(options)}`)
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new ArgumentError(`signal: expected an AbortSignal, got ${describe(options.signal)}`)
  if (options.onProgress === undefined) return options
  if (typeof options.onProgress !== 'function') throw new ArgumentError(`onProgress: expected a function, got ${describe(options.onProgress)}`)
  return { ...options, onProgress: guardProgress(options.onProgress) }
}

/**
 * The caller's progress callback, with its throw turned into an {@link ArgumentError} (its
 * cause the callback's error). A dstore error is not mistaken for a failed connection, so the
 * call ends with it at once instead of retrying and reporting Global unreachable.
 */
export function guardProgress (onProgress: (event: ProgressEvent) => void): (event: ProgressEvent) => void {
  return (event) => {
    try {
      onProgress(event)
    } catch (err) {
      throw new ArgumentError(`onProgress threw: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
  }
}

function checkCount (name: string, value: unknown, min: number): void {
  if (value === undefined) return
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new ArgumentError(`${name}: expected an integer >= ${min}, got ${describe(value)}`)
  }
}

/** A value as an argument error names what it got: its type, and a short string or a class name. */
export function describe (value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 50))}`
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'no prototype'})`
  return `${typeof value} ${String(value)}`
}
