/**
 * Wire messages of the swarm (`docs/PROTOCOL.md`, "The swarm"): what Locals tell Global
 * (ANNOUNCE, BADPEER), what they ask it (SOURCES, VOUCH, and a GET with the SWARM flag), and
 * what they ask each other (HAVE). Same framing and rules as messages.ts: every length is
 * checked against the bytes present, and anything malformed is a `ProtocolError`.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { ProtocolError } from '../core/errors.js'
import { Bitfield, pieceCount, pieceSize } from '../core/swarm/pieces.js'
import { KIND, RESPONSE, SWARM_MAX_ADDRS, SWARM_MAX_ADDR_LEN, SWARM_MAX_SOURCES } from './constants.js'
import { GET_SOURCES, MessageReader, MessageWriter, U64_NONE } from './messages.js'

/** What a Local says of a value in an ANNOUNCE. */
export const SWARM_STATE = { DROPPED: 0, FETCHING: 1, COMPLETE: 2 } as const
export type SwarmState = typeof SWARM_STATE[keyof typeof SWARM_STATE]

/** A Local that can serve ranges of a value. */
export interface SwarmSource {
  /** Its PeerId, as a string. */
  peerId: string
  /** Holds the whole value (else: is fetching it, and serves the pieces it has verified). */
  complete: boolean
  /** Where to dial it (without `/p2p/`). */
  addrs: Multiaddr[]
}

export interface AnnounceEntry { digest: Uint8Array, state: SwarmState }
export interface Announce {
  /** The sender's swarm addresses; absent or empty: unchanged. */
  addrs?: Multiaddr[]
  entries: AnnounceEntry[]
}

/** What a Local holds of a value, as a HAVE answer says. */
export interface HaveInfo {
  state: 'partial' | 'complete'
  size: number
  pieceSize: number
  /** Pieces held (all set when complete). */
  have: Bitfield
  /** Pieces being fetched now (none set when complete). */
  fetching: Bitfield
}

// ---- pieces shared by several messages -----------------------------------------------------

function writeAddrs (w: MessageWriter, addrs: Multiaddr[]): void {
  if (addrs.length > SWARM_MAX_ADDRS) throw new RangeError(`${addrs.length} addresses exceed the limit of ${SWARM_MAX_ADDRS}`)
  w.u8(addrs.length)
  for (const a of addrs) {
    const b = a.bytes
    if (b.length > SWARM_MAX_ADDR_LEN) throw new RangeError(`address of ${b.length} bytes exceeds ${SWARM_MAX_ADDR_LEN}`)
    w.u16(b.length).bytes(b)
  }
}

function readAddrs (r: MessageReader): Multiaddr[] {
  const n = r.u8()
  if (n > SWARM_MAX_ADDRS) throw new ProtocolError(`${n} addresses exceed the limit of ${SWARM_MAX_ADDRS}`)
  const out: Multiaddr[] = []
  for (let i = 0; i < n; i++) {
    const len = r.u16()
    if (len > SWARM_MAX_ADDR_LEN) throw new ProtocolError(`address of ${len} bytes exceeds ${SWARM_MAX_ADDR_LEN}`)
    const bytes = r.bytes(len).slice()
    try {
      out.push(multiaddr(bytes))
    } catch (err) {
      throw new ProtocolError(`malformed multiaddr: ${(err as Error).message}`)
    }
  }
  return out
}

function writePeer (w: MessageWriter, peer: PeerId | string): void {
  const b = new TextEncoder().encode(peer.toString())
  if (b.length > 255) throw new RangeError('PeerId too long')
  w.u8(b.length).bytes(b)
}

function readPeer (r: MessageReader): string {
  const s = new TextDecoder().decode(r.bytes(r.u8()))
  try {
    return peerIdFromString(s).toString()
  } catch (err) {
    throw new ProtocolError(`malformed PeerId: ${(err as Error).message}`)
  }
}

function writeSources (w: MessageWriter, sources: SwarmSource[]): void {
  if (sources.length > SWARM_MAX_SOURCES) throw new RangeError(`${sources.length} sources exceed the limit of ${SWARM_MAX_SOURCES}`)
  w.u8(sources.length)
  for (const s of sources) {
    writePeer(w, s.peerId)
    w.u8(s.complete ? 1 : 0)
    writeAddrs(w, s.addrs)
  }
}

/** The source list of a SOURCES answer or of a GET answer of mode sources (the reader is left at its end). */
export function decodeSourceList (r: MessageReader): SwarmSource[] {
  const n = r.u8()
  if (n > SWARM_MAX_SOURCES) throw new ProtocolError(`${n} sources exceed the limit of ${SWARM_MAX_SOURCES}`)
  const out: SwarmSource[] = []
  for (let i = 0; i < n; i++) {
    const peerId = readPeer(r)
    const complete = r.u8()
    if (complete > 1) throw new ProtocolError(`source flag ${complete} is neither 0 nor 1`)
    out.push({ peerId, complete: complete === 1, addrs: readAddrs(r) })
  }
  r.end()
  return out
}

// ---- ANNOUNCE ------------------------------------------------------------------------------

export function announceBody (a: Announce): Uint8Array {
  if (a.entries.length > 0xffff) throw new RangeError('too many entries in one ANNOUNCE')
  const w = new MessageWriter(null, 0, 4 + a.entries.length * 33)
  writeAddrs(w, a.addrs ?? [])
  w.u16(a.entries.length)
  for (const e of a.entries) w.digest(e.digest).u8(e.state)
  return w.finish()
}

export function decodeAnnounce (r: MessageReader): Announce {
  const addrs = readAddrs(r)
  const n = r.count()
  const entries: AnnounceEntry[] = []
  for (let i = 0; i < n; i++) {
    const digest = r.digest().slice()
    const state = r.u8()
    if (state > SWARM_STATE.COMPLETE) throw new ProtocolError(`unknown ANNOUNCE state ${state}`)
    entries.push({ digest, state: state as SwarmState })
  }
  r.end()
  return { addrs: addrs.length > 0 ? addrs : undefined, entries }
}

// ---- SOURCES, and the GET answer of mode sources -------------------------------------------

export function sourcesBody (digest: Uint8Array): Uint8Array {
  return new MessageWriter(null, 0, 32).digest(digest).finish()
}

export function decodeSourcesRequest (r: MessageReader): Uint8Array {
  const d = r.digest().slice()
  r.end()
  return d
}

/** SOURCES answer: the size (undefined: Global does not have the value) and the sources. */
export function encodeSourcesResponse (id: number, size: number | undefined, sources: SwarmSource[]): Uint8Array {
  const w = new MessageWriter(KIND.SOURCES | RESPONSE, id, 16 + sources.length * 80).u64(size ?? U64_NONE)
  writeSources(w, size === undefined ? [] : sources)
  return w.finish()
}

export function decodeSourcesResponse (r: MessageReader): { size: number, sources: SwarmSource[] } | undefined {
  const size = r.u64()
  const sources = decodeSourceList(r)
  return size === U64_NONE ? undefined : { size, sources }
}

/** GET answer of mode sources: the value's size and who can serve it. */
export function encodeGetSources (id: number, size: number, sources: SwarmSource[]): Uint8Array {
  const w = new MessageWriter(KIND.GET | RESPONSE, id, 16 + sources.length * 80).u8(GET_SOURCES).u64(size)
  writeSources(w, sources)
  return w.finish()
}

// ---- VOUCH, BADPEER ------------------------------------------------------------------------

export function vouchBody (peer: PeerId | string): Uint8Array {
  const w = new MessageWriter(null, 0, 64)
  writePeer(w, peer)
  return w.finish()
}

export function decodeVouch (r: MessageReader): string {
  const peer = readPeer(r)
  r.end()
  return peer
}

export function encodeVouchResponse (id: number, allowed: boolean): Uint8Array {
  return new MessageWriter(KIND.VOUCH | RESPONSE, id, 1).u8(allowed ? 1 : 0).finish()
}

export function decodeVouchResponse (r: MessageReader): boolean {
  const v = r.u8()
  r.end()
  if (v > 1) throw new ProtocolError(`VOUCH answer ${v} is neither 0 nor 1`)
  return v === 1
}

export function badPeerBody (digest: Uint8Array, peer: PeerId | string): Uint8Array {
  const w = new MessageWriter(null, 0, 96).digest(digest)
  writePeer(w, peer)
  return w.finish()
}

export function decodeBadPeer (r: MessageReader): { digest: Uint8Array, peerId: string } {
  const digest = r.digest().slice()
  const peerId = readPeer(r)
  r.end()
  return { digest, peerId }
}

// ---- HAVE (Local → Local) ------------------------------------------------------------------

export function haveBody (digest: Uint8Array): Uint8Array {
  return new MessageWriter(null, 0, 32).digest(digest).finish()
}

export function decodeHaveRequest (r: MessageReader): Uint8Array {
  const d = r.digest().slice()
  r.end()
  return d
}

/** HAVE answer: none (undefined), complete (size), or partial (size and both bitfields). */
export function encodeHaveResponse (id: number, info: { size: number, have?: Bitfield, fetching?: Bitfield } | undefined): Uint8Array {
  const w = new MessageWriter(KIND.HAVE | RESPONSE, id, 16)
  if (info === undefined) return w.u8(0).finish()
  if (info.have === undefined || info.have.full()) return w.u8(2).u64(info.size).finish()
  const fetching = info.fetching ?? new Bitfield(info.have.n)
  return w.u8(1).u64(info.size).u32(pieceSize(info.size)).bytes(info.have.bytes).bytes(fetching.bytes).finish()
}

export function decodeHaveResponse (r: MessageReader): HaveInfo | undefined {
  const state = r.u8()
  if (state === 0) { r.end(); return undefined }
  if (state > 2) throw new ProtocolError(`unknown HAVE state ${state}`)
  const size = r.u64()
  if (size === U64_NONE) throw new ProtocolError('HAVE answer size cannot be the none value')
  const n = pieceCount(size)
  if (state === 2) {
    r.end()
    const have = new Bitfield(n)
    for (let i = 0; i < n; i++) have.set(i)
    return { state: 'complete', size, pieceSize: pieceSize(size), have, fetching: new Bitfield(n) }
  }
  const ps = r.u32()
  if (ps !== pieceSize(size)) throw new ProtocolError(`HAVE answer's piece size ${ps} is not ${pieceSize(size)} for a ${size}-byte value`)
  const len = Math.ceil(n / 8)
  try {
    const have = Bitfield.fromBytes(r.bytes(len), n)
    const fetching = Bitfield.fromBytes(r.bytes(len), n)
    r.end()
    return { state: 'partial', size, pieceSize: ps, have, fetching }
  } catch (err) {
    if (err instanceof ProtocolError) throw err
    throw new ProtocolError(`malformed HAVE answer: ${(err as Error).message}`)
  }
}
