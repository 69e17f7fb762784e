/**
 * Caps requests in progress at once: up to `concurrency` run, up to `queue` more wait their
 * turn (in arrival order), and beyond that a request is answered 503 with `Retry-After` at
 * once. So a burst of any size costs bounded work and memory, and is served as fast as the
 * slots allow, not dropped.
 */
import { HttpError } from './errors.js'

export class RequestLimiter {
  private active = 0
  private readonly waiting: Array<() => void> = []

  constructor (private readonly concurrency: number, private readonly queue: number) {}

  /** Resolves with the function that frees the slot (call it exactly once). */
  async acquire (signal: AbortSignal): Promise<() => void> {
    if (this.active < this.concurrency) {
      this.active++
      return this.releaser()
    }
    if (signal.aborted) throw new HttpError(503, 'ERR_BUSY', 'request abandoned before it started')
    if (this.waiting.length >= this.queue) {
      throw new HttpError(503, 'ERR_BUSY', `server busy: ${this.active} requests in progress and ${this.waiting.length} waiting`, { 'Retry-After': '1' })
    }
    await new Promise<void>((resolve, reject) => {
      const turn = (): void => { signal.removeEventListener('abort', gone); resolve() }
      // A client that leaves while waiting gives up its place (and never gets a slot).
      const gone = (): void => {
        const i = this.waiting.indexOf(turn)
        if (i >= 0) this.waiting.splice(i, 1)
        reject(new HttpError(503, 'ERR_BUSY', 'request abandoned while waiting'))
      }
      signal.addEventListener('abort', gone, { once: true })
      this.waiting.push(turn)
    })
    return this.releaser()
  }

  /** Requests running, and waiting. */
  get load (): { active: number, waiting: number } { return { active: this.active, waiting: this.waiting.length } }

  private releaser (): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      const next = this.waiting.shift()
      // The slot passes straight to the next in line, so `active` stays the same.
      if (next !== undefined) next()
      else this.active--
    }
  }
}
