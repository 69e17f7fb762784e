/**
 * Values whose stored copy a re-check found bad (a Local rejected it): a store answers them as
 * suspect until a put re-verifies or replaces them. In memory only, and bounded: past `max`
 * values, more are not remembered (a re-check finds them again). Shared by the fs and S3 stores.
 */
export class SuspectSet {
  private readonly keys = new Set<string>()

  constructor (private readonly max = 4096) {}

  /** Marks the value with this 32-byte digest suspect. */
  add (digest: Uint8Array): void {
    if (this.keys.size < this.max) this.keys.add(hex(digest))
  }

  has (digest: Uint8Array): boolean {
    return this.keys.has(hex(digest))
  }

  /** Clears the mark (a put stored or re-verified the value, or it was deleted). */
  delete (digest: Uint8Array): void {
    this.keys.delete(hex(digest))
  }
}

function hex (digest: Uint8Array): string {
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('hex')
}
