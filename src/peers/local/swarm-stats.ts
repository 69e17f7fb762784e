/**
 * The swarm's counters of a Local (LocalStats.swarm): the serving side counts what it served,
 * the downloader (swarm-fetch.ts) what it fetched and from whom. Counters only grow, except
 * `active`.
 */

/** What the downloader counts; the serving side's counts are its own (swarm-serve.ts). */
export class SwarmCounters {
  /** Value bytes of swarm downloads received from peers, and from Global. */
  bytesFromPeers = 0
  bytesFromGlobal = 0
  /** Distinct peers that sent a verified range. */
  readonly peersUsed = new Set<string>()
  /** Ranges from peers that failed verification. */
  badRanges = 0
  /** Peers dropped as a source of a value (bad bytes, stalled, vanished). */
  peersDropped = 0
  /** Swarm downloads finished. */
  downloads = 0
}

/** LocalStats.swarm: the swarm's state and counters on a Local. */
export interface SwarmStats {
  /** Whether the swarm is on (`swarm` option). */
  enabled: boolean
  /** Where peers dial this Local (with `/p2p/`); empty when it serves nobody. */
  addrs: string[]
  bytesFromPeers: number
  /** Value bytes of swarm downloads that came from Global. */
  bytesFromGlobal: number
  /** Value bytes served to peers. */
  bytesToPeers: number
  /** Distinct peers that sent this Local a verified range. */
  peersUsed: number
  badRanges: number
  peersDropped: number
  /** Swarm downloads finished. */
  downloads: number
  /** Downloads in flight now (registered PartialValues). */
  active: number
}
