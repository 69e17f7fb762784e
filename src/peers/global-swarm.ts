/**
 * Global's part of the swarm (issue #12): the tracker, which Locals are connected now, the
 * egress cap, and the hooks through which one peer's swarm requests reach them
 * (src/protocol/swarm-provider.ts). Global owns one; it tells it when rpc channels open and
 * close, and when a value is deleted.
 */
import { ConfigError } from '../core/errors.js'
import { EgressBucket, MIN_EGRESS } from '../protocol/egress.js'
import type { SwarmHooks } from '../protocol/swarm-provider.js'
import { Tracker } from './tracker.js'

/** `GlobalStats.swarm`. */
export interface GlobalSwarmStats {
  /** Values the tracker knows at least one Local source of. */
  values: number
  /** Sources (a Local holding or fetching a value) over all values. */
  sources: number
  /** BADPEER reports received. */
  badPeerReports: number
  /** `maxEgress` in bytes per second, or null for none. */
  egressLimit: number | null
  /** Time transfers spent waiting for the egress cap, summed over transfers (ms). */
  egressWaitMs: number
}

/** Throws a ConfigError unless `maxEgress` is unset or a rate of at least {@link MIN_EGRESS} bytes/s. */
export function checkMaxEgress (maxEgress: unknown): void {
  if (maxEgress === undefined) return
  if (typeof maxEgress !== 'number' || !Number.isFinite(maxEgress) || maxEgress < MIN_EGRESS) {
    throw new ConfigError(`maxEgress must be a number of bytes per second of at least ${MIN_EGRESS}, not ${String(maxEgress)}`)
  }
}

export class GlobalSwarm {
  /** Which Locals hold or fetch which large values. */
  readonly tracker: Tracker
  /** The egress cap, shared by every transfer; undefined: none. */
  readonly egress: EgressBucket | undefined
  /** Open rpc channels per PeerId (a Local and the CLI commands sharing its repository share one). */
  private readonly channelsOf = new Map<string, number>()

  /** @param canRead whether Global's access lists let a peer read, now */
  constructor (maxEgress: number | undefined, private readonly canRead: (peerId: string) => boolean) {
    checkMaxEgress(maxEgress)
    // Handed out only while connected and allowed to read (the lists can change on SIGHUP).
    this.tracker = new Tracker({ eligible: (peerId) => this.channelsOf.has(peerId) && canRead(peerId) })
    this.egress = maxEgress === undefined ? undefined : new EgressBucket(maxEgress)
  }

  /** A Local's rpc channel opened. */
  opened (peerId: string): void {
    this.channelsOf.set(peerId, (this.channelsOf.get(peerId) ?? 0) + 1)
  }

  /** A Local's rpc channel closed: after its last one, it is a source of nothing. */
  closed (peerId: string): void {
    const left = (this.channelsOf.get(peerId) ?? 1) - 1
    if (left > 0) { this.channelsOf.set(peerId, left); return }
    this.channelsOf.delete(peerId)
    this.tracker.dropPeer(peerId)
  }

  /**
   * The tracker as one peer's swarm requests see it. What a peer says is recorded only while it
   * has an rpc channel open (a request answered after its last one closed would otherwise leave
   * entries that no `dropPeer` removes).
   */
  hooks (peerId: string): SwarmHooks {
    const connected = (): boolean => this.channelsOf.has(peerId)
    return {
      sources: (digest) => this.tracker.sources(digest, peerId),
      fetching: (digest) => { if (connected()) this.tracker.fetching(digest, peerId) },
      announce: (a) => { if (connected()) this.tracker.announce(peerId, a.addrs, a.entries) },
      // The same lists that decide what this Global serves (writers may always read).
      vouch: (other) => this.canRead(other),
      badPeer: (digest, other) => { this.tracker.badPeer(digest, other, peerId) }
    }
  }

  stats (): GlobalSwarmStats {
    return {
      ...this.tracker.stats(),
      egressLimit: this.egress?.rate ?? null,
      egressWaitMs: Math.round(this.egress?.waitedMs ?? 0)
    }
  }
}
