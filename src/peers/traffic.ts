/**
 * What a peer has moved, for /status and /metrics: value bytes received and served by source,
 * verification failures, and a bounded ring of the most recent transfers. Counters only grow
 * (Prometheus counters are read from them); the ring keeps the last {@link RECENT_TRANSFERS}.
 *
 * Sources name where the bytes came from or went to:
 * - on a Local: `cache` (served from its cache), `global` (fetched from Global), `client` (a put's bytes),
 *   `peer` (received from, or served to, another Local of the swarm);
 * - on Global: `local` (a Local over libp2p), `api` (a direct call on the peer, e.g. the HTTP backend).
 */
import { VerificationError } from '../core/errors.js'

/** Transfers kept in the ring. */
export const RECENT_TRANSFERS = 50

export type TransferSource = 'cache' | 'global' | 'client' | 'peer' | 'local' | 'api'

/** One finished (or failed) get or put of a value, or of a range of it. */
export interface TransferRecord {
  cid: string
  /** `get`: bytes went out to a caller; `put`: bytes came in. */
  op: 'get' | 'put'
  source: TransferSource
  /** Value bytes moved (a range's length for a range). */
  bytes: number
  /** Wall time from the call to its end, in ms. */
  ms: number
  /** When it ended, ms since the epoch. */
  at: number
  /** False when it failed part way (its bytes are what moved before). */
  ok: boolean
}

export interface TrafficSnapshot {
  /** Value bytes received, by source. */
  received: Partial<Record<TransferSource, number>>
  /** Value bytes served to callers, by source. */
  served: Partial<Record<TransferSource, number>>
  /** Transfers whose bytes did not verify against their CID. */
  verificationFailures: number
  /** Newest first, at most {@link RECENT_TRANSFERS}. */
  recent: TransferRecord[]
}

export class Traffic {
  private readonly receivedBy: Partial<Record<TransferSource, number>> = {}
  private readonly servedBy: Partial<Record<TransferSource, number>> = {}
  private failures = 0
  /** Oldest first; bounded. */
  private readonly ring: TransferRecord[] = []

  constructor (private readonly capacity = RECENT_TRANSFERS) {}

  received (source: TransferSource, n: number): void {
    if (n > 0) this.receivedBy[source] = (this.receivedBy[source] ?? 0) + n
  }

  served (source: TransferSource, n: number): void {
    if (n > 0) this.servedBy[source] = (this.servedBy[source] ?? 0) + n
  }

  /** Counts `err` when it is a verification failure (StreamVerificationError is one). */
  failedWith (err: unknown): void {
    if (err instanceof VerificationError) this.failures++
  }

  get verificationFailures (): number { return this.failures }

  /**
   * Records a transfer that started at `started` (Date.now()), counting its bytes as received
   * (put) or served (get) from `source`.
   */
  record (cid: string, op: 'get' | 'put', source: TransferSource, bytes: number, started: number, ok = true): void {
    if (op === 'put') this.received(source, bytes)
    else this.served(source, bytes)
    const at = Date.now()
    this.ring.push({ cid, op, source, bytes, ms: at - started, at, ok })
    if (this.ring.length > this.capacity) this.ring.shift()
  }

  snapshot (): TrafficSnapshot {
    return {
      received: { ...this.receivedBy },
      served: { ...this.servedBy },
      verificationFailures: this.failures,
      recent: this.ring.slice().reverse()
    }
  }
}
