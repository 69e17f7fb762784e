/**
 * Where everything of an fs store lives: every path is derived here, and nowhere else.
 *
 *   <root>/LOCK              pid of the process that has the store open (lock.ts)
 *   <root>/index.mdb(-lock)  lmdb: the index (index-db.ts)
 *   <root>/blobs/<hh>/<hex>  values above the inline threshold, named by the hex BLAKE3 digest
 *                            (<hh>: its first byte; shard folders are made when first needed)
 *   <root>/tmp/              puts in progress; emptied at every open
 *   <root>/quarantine/<hex>  bytes found corrupt (by verify, or by open's recovery); never read
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'

/** A data file's name: the 64 hex digits of its digest. */
export const BLOB_NAME = /^[0-9a-f]{64}$/
/** A shard folder's name: the first byte of its files' digests. */
export const SHARD_NAME = /^[0-9a-f]{2}$/

/** The paths of one store folder. */
export class FsLayout {
  readonly lock: string
  readonly index: string
  readonly blobs: string
  readonly tmp: string
  readonly quarantine: string
  private tempCounter = 0

  /** `root`: the store folder's real path (absolute, symlinks resolved). */
  constructor (readonly root: string) {
    this.lock = join(root, 'LOCK')
    this.index = join(root, 'index.mdb')
    this.blobs = join(root, 'blobs')
    this.tmp = join(root, 'tmp')
    this.quarantine = join(root, 'quarantine')
  }

  /** The shard folder of a data file. */
  shard (hex: string): string {
    return join(this.blobs, hex.slice(0, 2))
  }

  /** The data file of a digest (raw bytes or hex). */
  blob (key: Uint8Array | string): string {
    const hex = typeof key === 'string' ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')
    return join(this.shard(hex), hex)
  }

  /** Where corrupt bytes of `hex` go: the data file itself, or an inline value's payload (`.inline`). */
  quarantined (hex: string, inline: boolean): string {
    return join(this.quarantine, inline ? `${hex}.inline` : hex)
  }

  /** A fresh temp file path under tmp/ (unique in this process and across processes). */
  tempFile (): string {
    return join(this.tmp, `${process.pid}-${++this.tempCounter}-${randomBytes(6).toString('hex')}.part`)
  }
}
