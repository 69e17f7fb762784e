/**
 * Where the S3 store keeps things in its bucket (docs/STORAGE.md, "The S3 store"). Every key
 * starts with the store's prefix (empty, or ending in `/`):
 *
 * - `blobs/<cid>`: a value, the whole object, its bytes exactly (no metadata needed);
 * - `outboards/<cid>`: that value's outboard (8-byte length header and parent nodes);
 * - `staging/<uuid>`: a put in progress (a multipart upload, then a complete object);
 * - `quarantine/<cid>.<ms>`: a value `verify --repair` found corrupt, moved aside.
 */
import { randomUUID } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { parseCID } from '../../cid.js'

export class S3Layout {
  readonly blobs: string
  readonly outboards: string
  readonly staging: string
  readonly quarantine: string

  /** `prefix`: '' or a path ending in `/` (one is added when missing). */
  constructor (prefix = '') {
    const p = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`
    this.blobs = `${p}blobs/`
    this.outboards = `${p}outboards/`
    this.staging = `${p}staging/`
    this.quarantine = `${p}quarantine/`
  }

  blob (cid: CID): string { return this.blobs + cid.toString() }
  outboard (cid: CID): string { return this.outboards + cid.toString() }
  /** A fresh staging key: random, so two Globals putting the same value never share one. */
  newStaging (): string { return this.staging + randomUUID() }
  quarantined (cid: CID, at = Date.now()): string { return `${this.quarantine}${cid.toString()}.${at}` }

  /** The CID a key under `blobs/` (or `outboards/`) names, or undefined for a stray key. */
  cidOf (key: string, under: string): CID | undefined {
    if (!key.startsWith(under)) return undefined
    try {
      return parseCID(key.slice(under.length))
    } catch {
      return undefined
    }
  }
}

/** `CopySource` for a key: bucket and key, each path segment URL-encoded. */
export function copySource (bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`
}
