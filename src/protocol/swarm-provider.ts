/**
 * Global's answers to the swarm requests (docs/PROTOCOL.md, "The swarm"): ANNOUNCE, SOURCES,
 * VOUCH and BADPEER on a Local's rpc channel, and the choice a GET with the SWARM flag makes.
 * What is tracked, and who may be listed, is the caller's ({@link SwarmHooks}: Global's
 * tracker); this file is only the protocol.
 *
 * Invariants:
 * - every one of them needs read access (checked by the provider before it gets here);
 * - a SOURCES answer for a value Global does not hold (or holds a corrupt copy of) lists nobody;
 * - a GET is answered with sources only when it asked for them, covers the whole value, the
 *   value is at least {@link SWARM_MIN_SIZE} bytes, and someone other than the asker is listed.
 */
import { ProtocolError } from '../core/errors.js'
import { KIND, SWARM_MIN_SIZE } from './constants.js'
import { encodeOk, type GetRequest, type MessageReader } from './messages.js'
import {
  decodeAnnounce, decodeBadPeer, decodeSourcesRequest, decodeVouch, encodeGetSources, encodeSourcesResponse,
  encodeVouchResponse, type Announce, type SwarmSource
} from './swarm-messages.js'

/**
 * What Global does with the swarm requests of one peer (the one whose channel they came on).
 * Absent from `ProviderOptions`: the swarm kinds are unknown requests (a Local serving peers).
 */
export interface SwarmHooks {
  /** Sources of `digest` to hand this peer (never itself), at most `SWARM_MAX_SOURCES`. */
  sources: (digest: Uint8Array) => SwarmSource[]
  /** This peer is fetching `digest` from Global (it asked with the SWARM flag). */
  fetching: (digest: Uint8Array) => void
  /** This peer's ANNOUNCE. */
  announce: (a: Announce) => void
  /** May `peerId` read? (VOUCH) */
  vouch: (peerId: string) => boolean
  /** This peer says `peerId` sent it bad bytes of `digest` (BADPEER). */
  badPeer: (digest: Uint8Array, peerId: string) => void
}

/**
 * Answers an ANNOUNCE, SOURCES, VOUCH or BADPEER. `sizeOf` is the size STAT would answer
 * (undefined: not held).
 */
export async function answerSwarmRequest (msg: MessageReader, hooks: SwarmHooks | undefined,
  sizeOf: (digest: Uint8Array) => Promise<number | undefined>): Promise<Uint8Array> {
  if (hooks === undefined) throw new ProtocolError(`unknown request kind 0x${msg.kind.toString(16)}`)
  switch (msg.kind) {
    case KIND.ANNOUNCE: {
      hooks.announce(decodeAnnounce(msg))
      return encodeOk(KIND.ANNOUNCE, msg.id)
    }
    case KIND.SOURCES: {
      const digest = decodeSourcesRequest(msg)
      const size = await sizeOf(digest)
      return encodeSourcesResponse(msg.id, size, size === undefined ? [] : hooks.sources(digest))
    }
    case KIND.VOUCH:
      return encodeVouchResponse(msg.id, hooks.vouch(decodeVouch(msg)))
    case KIND.BADPEER: {
      const { digest, peerId } = decodeBadPeer(msg)
      hooks.badPeer(digest, peerId)
      return encodeOk(KIND.BADPEER, msg.id)
    }
    default:
      throw new ProtocolError(`unknown request kind 0x${msg.kind.toString(16)}`)
  }
}

/**
 * The swarm's part of a GET of a value of `size` bytes whose range is `range`: records the asker
 * as fetching it, and returns the GET answer of mode sources when there are any to give;
 * undefined means answer as without the flag.
 */
export function swarmGetAnswer (id: number, req: GetRequest, size: number, range: { offset: number, length: number },
  hooks: SwarmHooks | undefined): Uint8Array | undefined {
  if (hooks === undefined || req.swarm !== true || size < SWARM_MIN_SIZE) return undefined
  // Only a whole value: a range is a Local's own business (a partial read of a large value).
  if (range.offset !== 0 || range.length !== size) return undefined
  // Asked before the asker is recorded: it is never its own source.
  const sources = hooks.sources(req.digest)
  hooks.fetching(req.digest)
  return sources.length > 0 ? encodeGetSources(id, size, sources) : undefined
}
