/**
 * Cancellation, in one place: the error an aborted call throws, the check before work starts,
 * and waiting on a promise or an iterator so that an abort ends the wait at once.
 *
 * Why not `Promise.race([next(), aborted])` with one long-lived `aborted` promise: a promise
 * that never settles keeps every reaction ever attached to it, and each `race` attaches one that
 * holds the race's result. Raced once per piece of a transfer, that kept every piece of a 1 GiB
 * put or get reachable while the signal lived (the CLI always passes one): RSS grew with the
 * transfer. The helpers here attach to nothing that outlives one wait.
 */
import { AbortError, DstoreError } from './errors.js'

/** The error for a call whose `signal` aborted, carrying the signal's reason as its cause. */
export function abortError (signal?: AbortSignal, cause?: unknown): AbortError {
  return new AbortError(undefined, { cause: signal?.reason ?? cause })
}

/** Throws an {@link AbortError} if `signal` has been aborted. */
export function throwIfAborted (signal?: AbortSignal): void {
  if (signal?.aborted === true) throw abortError(signal)
}

/**
 * The error an aborted call ends with: a dstore error as it is, anything else (libp2p and the
 * platform throw their own abort errors) as an {@link AbortError}.
 */
export function asAbortError (err: unknown, signal?: AbortSignal): DstoreError {
  return err instanceof DstoreError ? err : abortError(signal, err)
}

const nothing = (): void => {}

/** The callbacks {@link onAbort} runs when their signal aborts, per signal, and its one listener. */
const waiting = new WeakMap<AbortSignal, { fns: Set<() => void>, listener: () => void }>()

/**
 * Runs `fn` once when `signal` aborts; the returned function cancels that. One event listener
 * per signal serves every such wait: a signal shared by many calls in flight (the CLI's, a
 * caller's for a batch of gets) would otherwise hold one listener each, and an EventTarget
 * checks each new listener against all the others (a thousand gets at once cost half a million
 * comparisons). The listener is removed once no wait is left, so a cancelled wait keeps nothing
 * reachable from the signal, and a signal no call waits on has no listener of ours (a leaked
 * wait shows in `getEventListeners`). The waits run together, in the order they were made, at the
 * place of the listener among the signal's others. Nothing runs for a signal that has already
 * aborted: check `signal.aborted` first. Without a signal, nothing to wait on: a no-op cancel.
 */
export function onAbort (signal: AbortSignal | undefined, fn: () => void): () => void {
  if (signal == null) return nothing
  let entry = waiting.get(signal)
  if (entry === undefined) {
    entry = listen(signal)
    waiting.set(signal, entry)
  }
  const { fns, listener } = entry
  fns.add(fn)
  return () => {
    if (!fns.delete(fn) || fns.size > 0 || waiting.get(signal)?.fns !== fns) return
    waiting.delete(signal)
    signal.removeEventListener('abort', listener)
  }
}

/**
 * The one listener of `signal`, made apart from {@link onAbort}: a closure made there would
 * share the scope of the first call, and so keep that call's `fn` (and whatever it refers to: a
 * whole value, for a raced get) reachable for as long as the signal lives.
 */
function listen (signal: AbortSignal): { fns: Set<() => void>, listener: () => void } {
  const fns = new Set<() => void>()
  const listener = (): void => {
    waiting.delete(signal)
    // A wait cancelled by an earlier one during this abort does not run.
    for (const f of [...fns]) {
      if (!fns.delete(f)) continue
      // One wait that throws must not keep the others from running: its error is rethrown
      // on its own, as an abort listener's would be.
      try { f() } catch (err) { queueMicrotask(() => { throw err }) }
    }
  }
  signal.addEventListener('abort', listener, { once: true })
  return { fns, listener }
}

/**
 * `promise`, or an {@link AbortError} as soon as `signal` aborts. The promise itself runs on;
 * the wait on the signal lives only as long as this one wait.
 */
export async function raceAbort<T> (promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal == null) return await promise
  if (signal.aborted) {
    promise.catch(() => {})
    throw abortError(signal)
  }
  return await new Promise<T>((resolve, reject) => {
    const cancel = onAbort(signal, () => { reject(abortError(signal)) })
    promise.then(
      (v) => { cancel(); resolve(v) },
      (e) => { cancel(); reject(e) })
  })
}

/**
 * A signal that aborts (with the same reason) as soon as any of `signals` does. Call `clear()`
 * when done with it: it detaches from each of `signals`, so a long-lived one (a peer's stop
 * signal) does not keep every call's listener. `end()` clears and aborts the linked signal
 * itself, so that whatever still waits on it (the losers of a race) stops too.
 */
export function linkSignals (...signals: Array<AbortSignal | undefined>): { signal: AbortSignal, clear: () => void, end: () => void } {
  const controller = new AbortController()
  const cancels: Array<() => void> = []
  const clear = (): void => { for (const cancel of cancels.splice(0)) cancel() }
  for (const s of signals) {
    if (s == null) continue
    if (s.aborted) { controller.abort(s.reason); break }
    cancels.push(onAbort(s, () => { controller.abort(s.reason) }))
  }
  if (controller.signal.aborted) clear()
  return { signal: controller.signal, clear, end: () => { clear(); controller.abort() } }
}

/**
 * Pulls from an (async) iterator so that an abort rejects the pending `next()` at once, even
 * when the source is stalled (a FIFO with no writer, a peer that stopped sending). One abort
 * listener serves every `next()`; each wait holds only its own promise, so nothing a piece
 * refers to stays reachable once the next piece is asked for.
 */
export class AbortableIterator<T> {
  private readonly iterator: AsyncIterator<T> | Iterator<T>
  private pendingReject: ((err: Error) => void) | undefined
  /** A `next()` of the source has not settled. */
  private pending = false
  private readonly cancelAbort: () => void

  constructor (source: AsyncIterable<T> | Iterable<T>, private readonly signal?: AbortSignal) {
    const src = source as Partial<AsyncIterable<T> & Iterable<T>>
    this.iterator = typeof src[Symbol.asyncIterator] === 'function'
      ? (src as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (src as Iterable<T>)[Symbol.iterator]()
    this.cancelAbort = onAbort(signal, () => { this.pendingReject?.(abortError(signal)) })
  }

  /** The next piece; rejects with {@link AbortError} as soon as the signal aborts. */
  async next (): Promise<IteratorResult<T>> {
    throwIfAborted(this.signal)
    if (this.signal == null) return await this.iterator.next()
    // `pending` follows the source's own next(), which may outlive this wait when it aborts.
    this.pending = true
    const next = Promise.resolve(this.iterator.next())
    next.then(() => { this.pending = false }, () => { this.pending = false })
    try {
      const result = await new Promise<IteratorResult<T>>((resolve, reject) => {
        this.pendingReject = reject
        next.then(resolve, reject)
      })
      throwIfAborted(this.signal)
      return result
    } finally {
      this.pendingReject = undefined
    }
  }

  /**
   * Stops listening for the abort and, unless the source ended by itself, stops it (its
   * `return()`). A source still stuck in a `next()` (we stopped on an abort) is asked to stop
   * but not waited for: an async generator's `return()` would wait for that `next()`.
   */
  async close (sourceEnded: boolean): Promise<void> {
    this.cancelAbort()
    if (sourceEnded || typeof this.iterator.return !== 'function') return
    if (this.pending) {
      try { Promise.resolve(this.iterator.return()).catch(() => {}) } catch {}
    } else {
      try { await this.iterator.return() } catch {}
    }
  }
}
