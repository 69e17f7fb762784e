/**
 * dstore keys: CIDv1, codec `raw` (0x55), multihash `blake3` (0x1e) with a 32-byte digest of the
 * whole value, printed in base32 (`bafk…`). The same bytes always get the same key, however
 * they were chunked or sent, so `b3sum FILE` gives a file's key.
 */
import { open } from 'node:fs/promises'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { base32 } from 'multiformats/bases/base32'
import { bases } from 'multiformats/basics'
import type { MultibaseDecoder } from 'multiformats/bases/interface'
import { hash as blake3hash } from './blake3/index.js'
import { TreeHasher } from './tree.js'
import { InvalidCIDError } from './errors.js'

export { CID }

/** Multicodec code of `raw` binary. */
export const RAW_CODE = 0x55
/** Multicodec code of the `blake3` multihash. */
export const BLAKE3_CODE = 0x1e
/** Digest length dstore uses. */
export const DIGEST_LENGTH = 32

/** Anything dstore accepts where it needs a key. */
export type CIDLike = CID | string

/** Wraps a 32-byte BLAKE3 digest as a dstore CID. */
export function cidFromDigest (digest: Uint8Array): CID {
  if (digest.length !== DIGEST_LENGTH) {
    throw new InvalidCIDError(`A BLAKE3 digest is ${DIGEST_LENGTH} bytes, got ${digest.length}`)
  }
  return CID.createV1(RAW_CODE, Digest.create(BLAKE3_CODE, digest))
}

/** The CID of `bytes`. */
export function cidOfBytes (bytes: Uint8Array): CID {
  return cidFromDigest(blake3hash(bytes))
}

/** The CID of a stream of bytes, hashed incrementally in bounded memory. */
export async function cidOfStream (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<CID> {
  const hasher = new TreeHasher()
  for await (const chunk of source) hasher.update(chunk)
  return cidFromDigest(hasher.finalize().root)
}

/** The CID of the file at `path`, read in 1 MiB pieces. */
export async function cidOfFile (path: string): Promise<CID> {
  const handle = await open(path, 'r')
  try {
    const hasher = new TreeHasher()
    const buf = new Uint8Array(1 << 20)
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null)
      if (bytesRead === 0) break
      hasher.update(buf.subarray(0, bytesRead))
    }
    return cidFromDigest(hasher.finalize().root)
  } finally {
    await handle.close()
  }
}

/** The 32-byte BLAKE3 digest inside a dstore CID. */
export function digestOf (cid: CIDLike): Uint8Array {
  return parseCID(cid).multihash.digest
}

/**
 * Parses and validates a dstore key.
 *
 * @throws {InvalidCIDError} for anything but a CIDv1 with codec raw and a 32-byte blake3
 * multihash: CIDv0, other codecs or hashes, bad base encodings, truncated strings.
 */
export function parseCID (input: CIDLike | unknown): CID {
  if (typeof input === 'string') {
    // Keys are immutable values: the same text always parses to the same CID.
    const known = parsed.get(input)
    if (known !== undefined) return known
    const cid = checkKey(parseText(input))
    if (parsed.size >= PARSED_MAX) parsed.delete(parsed.keys().next().value as string)
    parsed.set(input, cid)
    return cid
  }
  const asCid = CID.asCID(input)
  if (asCid == null) throw new InvalidCIDError(`${describe(String(input))} is not a CID: dstore keys are base32 strings like bafkr4i… (CIDv1, raw, blake3)`)
  return checkKey(asCid)
}

/**
 * Every multibase multiformats knows (base32 upper, base64, base16, …), by prefix character.
 * CID.parse reads only base32, base36 and base58btc without one; keys print in base32 whatever
 * they were read as.
 */
const BY_PREFIX = new Map<string, MultibaseDecoder<string>>(Object.values(bases).map(b => [b.prefix, b]))
const ANY_BASE: MultibaseDecoder<string> = {
  decode (text) {
    const prefix = String.fromCodePoint(text.codePointAt(0) ?? 0)
    const base = BY_PREFIX.get(prefix)
    if (base === undefined) throw new Error(`unknown multibase prefix ${JSON.stringify(prefix)}`)
    return base.decode(text)
  }
}

/** Recently parsed key strings (parsing costs microseconds; a cache-hit get costs about as much in all). */
const parsed = new Map<string, CID>()
const PARSED_MAX = 1024

function parseText (input: string): CID {
  const text = input.trim()
  if (text.length === 0) throw new InvalidCIDError('Empty CID')
  try {
    return CID.parse(text, ANY_BASE)
  } catch (err) {
    throw new InvalidCIDError(`${describe(text)} is not a CID: dstore keys are base32 strings like bafkr4i… (CIDv1, raw, blake3)`, { cause: err })
  }
}

/** `cid` if it is a dstore key (printing canonically), else InvalidCIDError. */
function checkKey (cid: CID): CID {
  if (cid.version !== 1) {
    throw new InvalidCIDError(`CIDv${cid.version} is not a dstore key: dstore keys are CIDv1 (raw, blake3)`)
  }
  if (cid.code !== RAW_CODE) {
    throw new InvalidCIDError(`CID codec 0x${cid.code.toString(16)} is not a dstore key: dstore keys use the raw codec (0x55)`)
  }
  if (cid.multihash.code !== BLAKE3_CODE) {
    throw new InvalidCIDError(`CID hash 0x${cid.multihash.code.toString(16)} is not a dstore key: dstore keys use blake3 (0x1e)`)
  }
  if (cid.multihash.size !== DIGEST_LENGTH || cid.multihash.digest.length !== DIGEST_LENGTH) {
    throw new InvalidCIDError(`CID digest is ${cid.multihash.digest.length} bytes: dstore keys use 32-byte blake3 digests`)
  }
  // CID.parse keeps the text it parsed as the key's base32 form, so `bAFK…` (base32 decodes
  // either case) would print as given and differ, as a string, from the same key parsed from
  // `bafk…`; callers use toString() as a map key. Such a CID is rebuilt, to print canonically;
  // the usual lower-case one is kept with its cached string (toString() is on every hot path).
  return /[A-Z]/.test(cid.toString()) ? CID.decode(cid.bytes) : cid
}

/** True when `input` is a valid dstore key. */
export function isValidCID (input: unknown): boolean {
  try {
    parseCID(input)
    return true
  } catch {
    return false
  }
}

/** Canonical text form of a key: base32, `bafk…`. */
export function formatCID (cid: CIDLike): string {
  return parseCID(cid).toString(base32)
}

/** True when two keys name the same value, whatever their textual encoding. */
export function equalsCID (a: CIDLike, b: CIDLike): boolean {
  return parseCID(a).equals(parseCID(b))
}

/** Orders keys by their binary form: a total order, stable across encodings. */
export function compareCID (a: CIDLike, b: CIDLike): number {
  const x = parseCID(a).bytes
  const y = parseCID(b).bytes
  const n = Math.min(x.length, y.length)
  for (let i = 0; i < n; i++) {
    if (x[i] !== y[i]) return x[i] - y[i]
  }
  return x.length - y.length
}

function describe (text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text)
}
