/**
 * Every failure dstore reports, one class each, with a stable `name` and `code`.
 *
 * Callers (and tests) branch on `name` or `code`, never on message text. The CLI maps `code`
 * to a one-line message and an exit status.
 */

/** Base class of every dstore error. */
export class DstoreError extends Error {
  static readonly code: string = 'ERR_DSTORE'
  readonly code: string

  constructor (message: string, code: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** Thrown when a string or object is not a valid dstore key (a CIDv1, raw codec, blake3-256). */
export class InvalidCIDError extends DstoreError {
  static override readonly code = 'ERR_INVALID_CID'
  override name = 'InvalidCIDError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, InvalidCIDError.code, options) }
}

/** Thrown when no store or peer holds the requested blob. */
export class NotFoundError extends DstoreError {
  static override readonly code = 'ERR_NOT_FOUND'
  override name = 'NotFoundError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, NotFoundError.code, options) }
}

/** Thrown when bytes do not hash to what their CID or verified stream says. Nothing unverified is ever returned. */
export class VerificationError extends DstoreError {
  static override readonly code = 'ERR_VERIFICATION_FAILED'
  override name = 'VerificationError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, VerificationError.code, options) }
}

/** Thrown when a byte range does not fit the blob, or an argument is out of its allowed range. */
export class OutOfRangeError extends DstoreError {
  static override readonly code = 'ERR_OUT_OF_RANGE'
  override name = 'OutOfRangeError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, OutOfRangeError.code, options) }
}

/** Thrown when a value exceeds a configured size limit (a cache, a message, a blob). */
export class TooLargeError extends DstoreError {
  static override readonly code = 'ERR_TOO_LARGE'
  override name = 'TooLargeError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, TooLargeError.code, options) }
}

/** Thrown when an operation is cancelled through its `AbortSignal`. */
export class AbortError extends DstoreError {
  static override readonly code = 'ERR_ABORTED'
  override name = 'AbortError'
  constructor (message = 'The operation was aborted', options?: { cause?: unknown }) { super(message, AbortError.code, options) }
}

/** Thrown when the underlying storage fails (disk full, permissions, a corrupt index). */
export class StorageError extends DstoreError {
  static override readonly code = 'ERR_STORAGE'
  override name = 'StorageError'
  /** Set when the store is locked by another live process: that process's pid. */
  readonly lockedBy?: number
  constructor (message: string, options?: { cause?: unknown, lockedBy?: number }) {
    super(message, StorageError.code, options)
    if (options?.lockedBy !== undefined) this.lockedBy = options.lockedBy
  }
}

/** Thrown when a file changed (size or modification time) while it was read for a put: nothing is stored. */
export class FileChangedError extends DstoreError {
  static override readonly code = 'ERR_FILE_CHANGED'
  override name = 'FileChangedError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, FileChangedError.code, options) }
}

/** Thrown when a store is used after `close()`. */
export class ClosedError extends DstoreError {
  static override readonly code = 'ERR_CLOSED'
  override name = 'ClosedError'
  constructor (message = 'The store is closed', options?: { cause?: unknown }) { super(message, ClosedError.code, options) }
}

/** Thrown when a remote peer breaks the wire protocol (garbage, oversized frames, wrong order). */
export class ProtocolError extends DstoreError {
  static override readonly code = 'ERR_PROTOCOL'
  override name = 'ProtocolError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, ProtocolError.code, options) }
}

/** Thrown when a Local cannot reach its Global within the configured time. */
export class GlobalUnreachableError extends DstoreError {
  static override readonly code = 'ERR_GLOBAL_UNREACHABLE'
  override name = 'GlobalUnreachableError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, GlobalUnreachableError.code, options) }
}

/** Thrown when a request is not answered, or a transfer makes no progress, within its time limit. */
export class TimeoutError extends DstoreError {
  static override readonly code = 'ERR_TIMEOUT'
  override name = 'TimeoutError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, TimeoutError.code, options) }
}

/** Thrown when a peer refuses a request because the caller's identity is not allowed to make it. */
export class PermissionDeniedError extends DstoreError {
  static override readonly code = 'ERR_PERMISSION_DENIED'
  override name = 'PermissionDeniedError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, PermissionDeniedError.code, options) }
}

/** Thrown when a peer's configuration is invalid or unsafe (a bad allow-list entry, open writes on a public address). */
export class ConfigError extends DstoreError {
  static override readonly code = 'ERR_CONFIG'
  override name = 'ConfigError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, ConfigError.code, options) }
}

/** Thrown by a Local daemon's client (`connectLocal`) when the daemon does not answer, or its connection breaks. */
export class DaemonUnreachableError extends DstoreError {
  static override readonly code = 'ERR_DAEMON_UNREACHABLE'
  override name = 'DaemonUnreachableError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, DaemonUnreachableError.code, options) }
}

/**
 * Thrown when the storage behind a store cannot be reached or keeps refusing for now (an S3
 * endpoint that is down, unreachable or throttling after every retry). Trying again later may work.
 */
export class StoreUnavailableError extends DstoreError {
  static override readonly code = 'ERR_STORE_UNAVAILABLE'
  override name = 'StoreUnavailableError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, StoreUnavailableError.code, options) }
}

const BY_CODE: Record<string, new (message: string) => DstoreError> = {
  [InvalidCIDError.code]: InvalidCIDError,
  [NotFoundError.code]: NotFoundError,
  [VerificationError.code]: VerificationError,
  [OutOfRangeError.code]: OutOfRangeError,
  [TooLargeError.code]: TooLargeError,
  [AbortError.code]: AbortError,
  [StorageError.code]: StorageError,
  [ClosedError.code]: ClosedError,
  [ProtocolError.code]: ProtocolError,
  [GlobalUnreachableError.code]: GlobalUnreachableError,
  [TimeoutError.code]: TimeoutError,
  [PermissionDeniedError.code]: PermissionDeniedError,
  [ConfigError.code]: ConfigError,
  [FileChangedError.code]: FileChangedError,
  [DaemonUnreachableError.code]: DaemonUnreachableError,
  [StoreUnavailableError.code]: StoreUnavailableError
}

/**
 * Rebuilds the typed error a remote peer reported by its `code`. An unknown code becomes a
 * plain {@link DstoreError} that keeps the code, so newer peers' errors still read well.
 */
export function errorFromCode (code: string, message: string): DstoreError {
  const Class = BY_CODE[code]
  return Class != null ? new Class(message) : new DstoreError(message, code)
}

/** Thrown when a caller passes an argument of the wrong type or out of its allowed values (or a callback of theirs throws). */
export class ArgumentError extends DstoreError {
  static override readonly code = 'ERR_INVALID_ARGUMENT'
  override name = 'ArgumentError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, ArgumentError.code, options) }
}

/** Thrown (as HTTP 401) when a write on a tokened HTTP listener has no bearer token, or the wrong one. */
export class UnauthorizedError extends DstoreError {
  static override readonly code = 'ERR_UNAUTHORIZED'
  override name = 'UnauthorizedError'
  constructor (message: string, options?: { cause?: unknown }) { super(message, UnauthorizedError.code, options) }
}
