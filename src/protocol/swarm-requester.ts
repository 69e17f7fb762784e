/**
 * The requesting side of the swarm messages (swarm-messages.ts): a Local asking Global (GET
 * with the SWARM flag, SOURCES, VOUCH; telling it ANNOUNCE, BADPEER) or another Local (HAVE).
 * Whatever these answers say is a hint: sources are only tried, and every byte any of them
 * sends is verified by the decoder against the CID as it is from Global.
 */
import type { PeerId } from '@libp2p/interface'
import type { CallOptions } from '../core/store/interface.js'
import { KIND, SWARM_MIN_SIZE } from './constants.js'
import { GET_SOURCES } from './messages.js'
import { deliverAnswer, requestGet, type GetRangeOptions, type RequesterContext } from './requester.js'
import {
  announceBody, badPeerBody, decodeHaveResponse, decodeSourceList, decodeSourcesResponse, decodeVouchResponse,
  haveBody, sourcesBody, vouchBody, type Announce, type HaveInfo, type SwarmSource
} from './swarm-messages.js'

export type { Announce, HaveInfo, SwarmSource }

/** What a whole-value GET asked with the SWARM flag was answered with. */
export type WholeAnswer =
  | { kind: 'sources', size: number, sources: SwarmSource[] }
  | { kind: 'stream', size: number, parts: AsyncGenerator<Uint8Array> }

/**
 * GETs a whole value. With `swarm`, Global may answer a value of at least SWARM_MIN_SIZE bytes
 * with its size and its sources (other Locals) instead of the bytes; otherwise (or for a smaller
 * value) the verified bytes come exactly as `getRange` would yield them.
 */
export async function getWhole (ctx: RequesterContext, digest: Uint8Array, options: GetRangeOptions & { swarm: boolean }): Promise<WholeAnswer> {
  const answer = await requestGet(ctx, digest, { offset: 0 }, options, options.swarm)
  if (answer.mode === GET_SOURCES) {
    const sources = decodeSourceList(answer.sources)
    return { kind: 'sources', size: answer.size, sources }
  }
  return { kind: 'stream', size: answer.size, parts: deliverAnswer(ctx, digest, { offset: 0 }, answer, options) }
}

/** Whether a value of `size` bytes is worth a swarm download. */
export function swarmWorthy (size: number): boolean { return size >= SWARM_MIN_SIZE }

/** Tells Global this Local's swarm addresses and what it holds, is fetching, or dropped. */
export async function announce (ctx: RequesterContext, a: Announce, options: CallOptions = {}): Promise<void> {
  const reply = await ctx.channel.request(KIND.ANNOUNCE, announceBody(a), options)
  reply.end()
}

/** The size of a value and its sources now, or undefined when Global does not have it. */
export async function findSources (ctx: RequesterContext, digest: Uint8Array, options: CallOptions = {}): Promise<{ size: number, sources: SwarmSource[] } | undefined> {
  const reply = await ctx.channel.request(KIND.SOURCES, sourcesBody(digest), options)
  return decodeSourcesResponse(reply)
}

/** Whether Global lets `peer` read (a Local serves only peers Global would serve). */
export async function vouch (ctx: RequesterContext, peer: PeerId | string, options: CallOptions = {}): Promise<boolean> {
  const reply = await ctx.channel.request(KIND.VOUCH, vouchBody(peer), options)
  return decodeVouchResponse(reply)
}

/** Tells Global that `peer` sent bytes of `digest` that failed verification. */
export async function reportBadPeer (ctx: RequesterContext, digest: Uint8Array, peer: PeerId | string, options: CallOptions = {}): Promise<void> {
  const reply = await ctx.channel.request(KIND.BADPEER, badPeerBody(digest, peer), options)
  reply.end()
}

/** What another Local holds of a value (undefined: nothing). */
export async function askHave (ctx: RequesterContext, digest: Uint8Array, options: CallOptions = {}): Promise<HaveInfo | undefined> {
  const reply = await ctx.channel.request(KIND.HAVE, haveBody(digest), options)
  return decodeHaveResponse(reply)
}
