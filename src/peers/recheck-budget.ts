/**
 * How many re-checks of stored bytes one peer may cause: a REPORT (or a GET it resets) costs
 * Global up to 1 MiB of reading and hashing, and a hostile reader could send them without end.
 * Each peer gets {@link RECHECKS_PER_MINUTE} a minute; past that its reports are ignored (the
 * value is still served verified, and any other peer's report, or `dstore verify`, still finds
 * a bad copy). Memory is bounded: at most {@link MAX_PEERS} peers are remembered.
 */

/** Re-checks one peer may cause per minute. */
export const RECHECKS_PER_MINUTE = 16
const MAX_PEERS = 1000
const MINUTE_MS = 60_000

export class RecheckBudget {
  private readonly used = new Map<string, { since: number, count: number }>()

  constructor (private readonly perMinute = RECHECKS_PER_MINUTE, private readonly now: () => number = Date.now) {}

  /** Whether `peer` may cause one more re-check now (and counts it if so). */
  take (peer: string): boolean {
    const t = this.now()
    let entry = this.used.get(peer)
    if (entry === undefined || t - entry.since >= MINUTE_MS) {
      if (entry === undefined && this.used.size >= MAX_PEERS) this.used.clear()
      entry = { since: t, count: 0 }
      this.used.set(peer, entry)
    }
    if (entry.count >= this.perMinute) return false
    entry.count++
    return true
  }
}
