/**
 * The S3 store's one door to the bucket: every request goes through `send`, which names the
 * operation (for the client layer's counters and its error mapping), passes cancellation on,
 * and turns every failure into a typed dstore error (never a raw SDK error).
 */
import type { S3Client } from '@aws-sdk/client-s3'
import { AbortError, NotFoundError } from '../../errors.js'

/** Maps an SDK failure of operation `op` to a dstore error (the client layer's `s3Error`). */
export type S3ErrorMapper = (err: unknown, op: string) => Error

export class S3Ops {
  constructor (readonly client: S3Client, readonly bucket: string, private readonly mapError: S3ErrorMapper) {}

  /** Sends `command` (operation `op`, e.g. `PutObject`); rejects with a typed error. */
  async send<T> (op: string, command: unknown, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted === true) throw new AbortError()
    try {
      return await (this.client.send as (c: unknown, o?: unknown) => Promise<T>)(command, signal !== undefined ? { abortSignal: signal } : undefined)
    } catch (err) {
      if (aborted(signal)) throw new AbortError()
      throw this.mapError(err, op)
    }
  }

  /** A failure of `op` that did not come from `send` (a GET body cut mid-way) as a typed error. */
  error (err: unknown, op: string): Error {
    return err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_') ? err : this.mapError(err, op)
  }

  /** Like `send`, but resolves undefined when the object is absent (404). */
  async sendOrAbsent<T> (op: string, command: unknown, signal?: AbortSignal): Promise<T | undefined> {
    try {
      return await this.send<T>(op, command, signal)
    } catch (err) {
      if (err instanceof NotFoundError) return undefined
      throw err
    }
  }
}

/** Read through a function, so the compiler does not narrow it across an await. */
function aborted (signal?: AbortSignal): boolean {
  return signal?.aborted === true
}
