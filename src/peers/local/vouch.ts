/**
 * Who a Local serves: the peers Global vouches for (VOUCH: would Global's access lists let
 * this peer read?), asked once per peer and remembered for {@link VOUCH_TTL_MS}, so the reader
 * allow-list of Global is the swarm's too (docs/SECURITY.md, "The swarm"). A list Global
 * reloads (SIGHUP) takes effect on a Local's peers within that time.
 *
 * Only Global's answer is remembered. A failure to ask (no Global connected, a timeout) fails
 * that request with GlobalUnreachableError and is asked again next time; an error answer (a
 * Global that does not know VOUCH, or refuses this Local itself) refuses the peer, not
 * remembered either: nothing is served without a yes.
 */
import type { PeerId } from '@libp2p/interface'
import { ClosedError, DstoreError, GlobalUnreachableError, PermissionDeniedError, TimeoutError } from '../../core/errors.js'

/** How long Global's answer about a peer is kept, in ms. */
export const VOUCH_TTL_MS = 30_000
/** Peers remembered at most; the oldest answers go first. */
export const VOUCH_MAX_PEERS = 10_000

/** Asks Global whether `peer` may read (the lead's `vouch(ctx, peerId)` over a Global connection). */
export type AskVouch = (peer: PeerId) => Promise<boolean>

export class VouchCache {
  /** Oldest first (Map insertion order): peer -> Global's answer and when it came. */
  private readonly answers = new Map<string, { allowed: boolean, at: number }>()
  private readonly asking = new Map<string, Promise<boolean>>()
  /** VOUCH requests sent to Global. */
  asked = 0

  constructor (private readonly ask: AskVouch, private readonly ttl = VOUCH_TTL_MS, private readonly max = VOUCH_MAX_PEERS) {}

  /**
   * Resolves when Global vouches for `peer`.
   * @throws {PermissionDeniedError} when it does not (or answers with an error).
   * @throws {GlobalUnreachableError} when Global could not be asked.
   */
  async check (peer: PeerId): Promise<void> {
    const id = peer.toString()
    const known = this.answers.get(id)
    let allowed: boolean
    if (known !== undefined && Date.now() - known.at < this.ttl) {
      allowed = known.allowed
    } else {
      let pending = this.asking.get(id)
      if (pending === undefined) {
        pending = this.askOnce(peer).finally(() => { this.asking.delete(id) })
        this.asking.set(id, pending)
      }
      allowed = await pending
    }
    if (!allowed) throw new PermissionDeniedError(`Global does not let peer ${id} read, so this Local does not serve it`)
  }

  /** Forgets every answer (tests; a Local that learns Global's lists changed). */
  clear (): void { this.answers.clear() }

  private async askOnce (peer: PeerId): Promise<boolean> {
    const id = peer.toString()
    let allowed: boolean
    try {
      this.asked++
      allowed = await this.ask(peer)
    } catch (err) {
      if (err instanceof GlobalUnreachableError) throw err
      if (err instanceof TimeoutError || err instanceof ClosedError || !(err instanceof DstoreError)) {
        throw new GlobalUnreachableError(`could not ask Global about peer ${id}: ${(err as Error).message}`, { cause: err })
      }
      throw new PermissionDeniedError(`Global did not vouch for peer ${id} (${err.message})`, { cause: err })
    }
    this.answers.delete(id)
    this.answers.set(id, { allowed, at: Date.now() })
    if (this.answers.size > this.max) this.answers.delete(this.answers.keys().next().value as string)
    return allowed
  }
}
