/**
 * Global's swarm tracker (issue #12; docs/PROTOCOL.md, "The tracker"): which Locals hold, or
 * are fetching, which large values, and where they can be dialled.
 *
 * What it keeps:
 * - per value: its sources, PeerId -> complete | fetching, oldest first;
 * - per peer: the addresses it announced, and the values it is a source of.
 *
 * Rules:
 * - a peer's entries and addresses go when it disconnects ({@link Tracker.dropPeer}, called
 *   when its last rpc channel closes); a value's entries go when it is deleted
 *   ({@link Tracker.forget}, called before the EVICTs go out, so no GET after the delete began
 *   is pointed at a Local that is about to evict it); a peer reported bad for a value stops
 *   being a source of it ({@link Tracker.badPeer});
 * - bounded: at most `maxSourcesPerValue` sources per value (the newest stay), `maxValuesPerPeer`
 *   values per peer (its newest stay), `maxEntries` in all (the least recently touched value
 *   loses its oldest source first), `maxAddrs` addresses per peer;
 * - {@link Tracker.sources} lists complete holders first, then fetchers, each group shuffled,
 *   at most {@link MAX_SOURCES}, and only peers that `eligible` accepts now (Global: connected,
 *   and allowed to read) and that announced addresses.
 *
 * It trusts what each peer says about itself (a lie costs the liar's victims one verified
 * range each: every byte from a peer is checked against the CID), and nothing a peer says
 * about another except BADPEER, which only removes.
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import { SWARM_MAX_ADDRS, SWARM_MAX_SOURCES } from '../protocol/constants.js'
import { SWARM_STATE, type AnnounceEntry, type SwarmSource } from '../protocol/swarm-messages.js'

/** Most sources in one answer (the wire's source list holds at most this many). */
export const MAX_SOURCES = SWARM_MAX_SOURCES

/** What a peer is for a value. */
export type SourceState = 'complete' | 'fetching'

export interface TrackerOptions {
  /** May this peer be handed out as a source now (connected, allowed to read)? */
  eligible: (peerId: string) => boolean
  /** @default 64 */
  maxSourcesPerValue?: number
  /** @default 16384 */
  maxValuesPerPeer?: number
  /** Sources over all values. @default 100000 */
  maxEntries?: number
  /** Addresses kept per peer (the first announced). @default SWARM_MAX_ADDRS (8) */
  maxAddrs?: number
  /** Random numbers in [0, 1) for the shuffles (tests). @default Math.random */
  random?: () => number
}

export interface TrackerStats {
  /** Values with at least one source. */
  values: number
  /** Sources over all values. */
  sources: number
  /** BADPEER reports received (each removes at most one source). */
  badPeerReports: number
}

interface Source { state: SourceState, since: number }

interface PeerEntry {
  addrs: Multiaddr[]
  /** Hex digests of the values it is a source of, oldest first. */
  values: Set<string>
}

function hexOf (digest: Uint8Array): string {
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('hex')
}

/** The tracker. Synchronous and in memory: it is rebuilt from ANNOUNCEs after a restart. */
export class Tracker {
  /** Hex digest -> its sources (PeerId -> state), least recently touched value first. */
  private readonly values = new Map<string, Map<string, Source>>()
  private readonly peers = new Map<string, PeerEntry>()
  private entries = 0
  private badPeerReports = 0
  private readonly maxSourcesPerValue: number
  private readonly maxValuesPerPeer: number
  private readonly maxEntries: number
  private readonly maxAddrs: number
  private readonly random: () => number

  constructor (private readonly options: TrackerOptions) {
    this.maxSourcesPerValue = options.maxSourcesPerValue ?? 64
    this.maxValuesPerPeer = options.maxValuesPerPeer ?? 16384
    this.maxEntries = options.maxEntries ?? 100_000
    this.maxAddrs = options.maxAddrs ?? SWARM_MAX_ADDRS
    this.random = options.random ?? Math.random
  }

  /**
   * Records what `peerId` announced: its addresses (when `addrs` is non-empty; empty leaves
   * them as they are) and the state of each value.
   */
  announce (peerId: string, addrs: Multiaddr[] | undefined, entries: AnnounceEntry[]): void {
    if (addrs != null && addrs.length > 0) this.peer(peerId).addrs = addrs.slice(0, this.maxAddrs)
    for (const e of entries) {
      if (e.state === SWARM_STATE.DROPPED) this.remove(hexOf(e.digest), peerId)
      else this.set(hexOf(e.digest), peerId, e.state === SWARM_STATE.COMPLETE ? 'complete' : 'fetching')
    }
  }

  /**
   * `peerId` is fetching `digest` from Global: recorded only if it announced addresses (else
   * nobody could dial it), and never over a complete entry.
   */
  fetching (digest: Uint8Array, peerId: string): void {
    if ((this.peers.get(peerId)?.addrs.length ?? 0) === 0) return
    const hex = hexOf(digest)
    if (this.values.get(hex)?.get(peerId)?.state === 'complete') return
    this.set(hex, peerId, 'fetching')
  }

  /** Whether `peerId` announced addresses (and has not disconnected since). */
  hasAddrs (peerId: string): boolean {
    return (this.peers.get(peerId)?.addrs.length ?? 0) > 0
  }

  /**
   * Up to {@link MAX_SOURCES} sources of `digest` other than `exclude`: complete holders first
   * (a random few), then the fetchers that have been fetching longest, each group in random
   * order; only peers `eligible` accepts now, with addresses.
   */
  sources (digest: Uint8Array, exclude?: string): SwarmSource[] {
    const sources = this.values.get(hexOf(digest))
    if (sources == null) return []
    const complete: string[] = []
    const fetching: string[] = []
    for (const [peerId, s] of sources) {
      if (peerId === exclude || !this.hasAddrs(peerId)) continue
      ;(s.state === 'complete' ? complete : fetching).push(peerId)
    }
    const out: SwarmSource[] = []
    // Complete holders are all as good: a random few. Of the fetchers, the longest fetching are
    // listed (they hold the most, and the first of them streams from Global, so it will come to
    // hold every piece); listing a random few of many instead left a Local in a flash crowd of
    // 16 with none of those, taking pieces from Global that the others were about to have.
    // Either way the list goes out shuffled within its group, to spread the load.
    this.shuffle(complete)
    fetching.sort((a, b) => (sources.get(a)?.since ?? 0) - (sources.get(b)?.since ?? 0))
    for (const [group, isComplete] of [[complete, true], [fetching, false]] as const) {
      const picked: SwarmSource[] = []
      for (const peerId of group) {
        if (out.length + picked.length >= MAX_SOURCES) break
        // Checked last, only for those that would be listed: it may cost a lookup each.
        if (!this.options.eligible(peerId)) continue
        picked.push({ peerId, complete: isComplete, addrs: this.peers.get(peerId)?.addrs ?? [] })
      }
      this.shuffle(picked)
      out.push(...picked)
    }
    return out
  }

  /** The value is deleted: it has no sources any more. */
  forget (digest: Uint8Array): void {
    const hex = hexOf(digest)
    const sources = this.values.get(hex)
    if (sources == null) return
    for (const peerId of sources.keys()) this.peers.get(peerId)?.values.delete(hex)
    this.entries -= sources.size
    this.values.delete(hex)
  }

  /** The peer disconnected: its addresses and every entry of it go. */
  dropPeer (peerId: string): void {
    const peer = this.peers.get(peerId)
    if (peer == null) return
    for (const hex of [...peer.values]) this.remove(hex, peerId)
    this.peers.delete(peerId)
  }

  /** A peer sent bad bytes of `digest` to someone: it is no longer a source of that value. */
  badPeer (digest: Uint8Array, peerId: string, reporter?: string): void {
    const sources = this.values.get(hexOf(digest))
    // Only a Local that is itself a source of the value (so it was given sources of it to fetch
    // from) may report one: any other reader could otherwise strike every source of every value
    // and send every downloader back to Global.
    if (reporter !== undefined && sources?.has(reporter) !== true) return
    this.badPeerReports++
    this.remove(hexOf(digest), peerId)
  }

  stats (): TrackerStats {
    return { values: this.values.size, sources: this.entries, badPeerReports: this.badPeerReports }
  }

  private peer (peerId: string): PeerEntry {
    let peer = this.peers.get(peerId)
    if (peer == null) {
      peer = { addrs: [], values: new Set() }
      this.peers.set(peerId, peer)
    }
    return peer
  }

  private set (hex: string, peerId: string, state: SourceState): void {
    let sources = this.values.get(hex)
    if (sources == null) {
      sources = new Map()
    } else {
      // Touched: to the back of the order of values (and of this value's sources below).
      this.values.delete(hex)
    }
    this.values.set(hex, sources)
    const peer = this.peer(peerId)
    if (sources.delete(peerId)) this.entries--
    sources.set(peerId, { state, since: Date.now() })
    this.entries++
    peer.values.delete(hex)
    peer.values.add(hex)
    // The bounds, oldest first: this value's, this peer's, then everyone's.
    while (sources.size > this.maxSourcesPerValue) this.remove(hex, sources.keys().next().value as string)
    while (peer.values.size > this.maxValuesPerPeer) this.remove(peer.values.values().next().value as string, peerId)
    while (this.entries > this.maxEntries) {
      const [oldHex, oldest] = this.values.entries().next().value as [string, Map<string, Source>]
      this.remove(oldHex, oldest.keys().next().value as string)
    }
  }

  private remove (hex: string, peerId: string): void {
    const sources = this.values.get(hex)
    if (sources?.delete(peerId) !== true) return
    this.entries--
    if (sources.size === 0) this.values.delete(hex)
    this.peers.get(peerId)?.values.delete(hex)
  }

  /** Fisher-Yates, in place. */
  private shuffle<T> (items: T[]): void {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1))
      ;[items[i], items[j]] = [items[j], items[i]]
    }
  }
}
