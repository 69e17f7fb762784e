/**
 * The registry of a Local's downloads in flight: CID -> {@link PartialValue}, so the serving side
 * (swarm-serve.ts) serves their verified pieces to other Locals while they download, and
 * coherence closes them when Global deletes the value.
 *
 * API (the downloader, swarm-fetch.ts, uses it):
 * - `add(cid, pv)`: register a download as soon as its PartialValue exists (before its first
 *   verified byte is fine: nothing is served until a piece is held). One per CID: a newer one
 *   replaces an older one in the registry (the older is not closed; its owner ends it).
 * - `get(cid)`: the registered PartialValue, undefined when none or when it was closed.
 * - `remove(cid, pv)`: unregister once the value is cached (or the download failed or was
 *   abandoned). Removes only `pv` itself, so a finished older download does not unregister a
 *   newer one. Does not close `pv`.
 * - `invalidate(cid)`: coherence.ts calls it on every invalidation (an EVICT, a delete from this
 *   Local, a reconciliation that found the value gone), before the EVICT is answered: the
 *   PartialValue is closed with a NotFoundError (its downloader sees the close: the get fails
 *   with NotFoundError) and removed, so from then on no piece of it is served to anyone.
 * - `keys()`: the CIDs registered, so a reconciliation after a reconnect checks them too.
 *
 * Synchronous throughout: an EVICT is answered only after `invalidate` has returned.
 */
import type { CID } from 'multiformats/cid'
import { NotFoundError } from '../../core/errors.js'
import type { PartialValue } from '../../core/swarm/partial.js'

export type { PartialValue }

export interface PartialRegistryOptions {
  /** Called after a PartialValue left the registry (removed or invalidated); the announcer says "dropped" unless it was cached. */
  onRemove?: (cid: CID) => void
}

/** Downloads in flight by CID (see the module comment for the API). */
export class PartialRegistry {
  private readonly byKey = new Map<string, { cid: CID, pv: PartialValue }>()

  constructor (private readonly options: PartialRegistryOptions = {}) {}

  /** Registers the download of `cid`. */
  add (cid: CID, pv: PartialValue): void {
    this.byKey.set(cid.toString(), { cid, pv })
  }

  /** The download of `cid` in flight, unless there is none or it was closed. */
  get (cid: CID): PartialValue | undefined {
    const entry = this.byKey.get(cid.toString())
    if (entry === undefined || entry.pv.closed) return undefined
    return entry.pv
  }

  /** Unregisters `pv` (only if it is the one registered for `cid`); does not close it. */
  remove (cid: CID, pv: PartialValue): void {
    const key = cid.toString()
    if (this.byKey.get(key)?.pv !== pv) return
    this.byKey.delete(key)
    this.options.onRemove?.(cid)
  }

  /** Closes (NotFoundError) and unregisters the download of `cid`: Global deleted the value. */
  invalidate (cid: CID): void {
    const key = cid.toString()
    const entry = this.byKey.get(key)
    if (entry === undefined) return
    this.byKey.delete(key)
    entry.pv.close(new NotFoundError(`${key} was deleted from Global during its download`))
    this.options.onRemove?.(cid)
  }

  /** The CIDs registered now. */
  keys (): CID[] {
    return [...this.byKey.values()].map(e => e.cid)
  }

  /** How many downloads are registered. */
  get size (): number { return this.byKey.size }

  /** Closes every registered download (the Local stops). */
  closeAll (reason: Error): void {
    const entries = [...this.byKey.values()]
    this.byKey.clear()
    for (const { pv } of entries) pv.close(reason)
  }
}
