/**
 * A Local's connection to its Global: one rpc channel, redialled with exponential backoff
 * (100 ms to 5 s) whenever it closes, and handed to calls only once the channel's `onOpen`
 * (the cache's reconciliation) has succeeded. Calls made while there is none wait up to
 * `connectTimeout`, then fail with GlobalUnreachableError — at once when the peer at Global's
 * address is not the one its `/p2p/` id names, since waiting cannot fix that.
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import { abortError, onAbort, throwIfAborted } from '../../core/abort.js'
import { ClosedError, GlobalUnreachableError } from '../../core/errors.js'
import { RPC_PROTOCOL } from '../../protocol/constants.js'
import { RpcChannel, type RequestHandler } from '../../protocol/rpc.js'
import type { RequesterContext } from '../../protocol/requester.js'
import type { DstoreNode } from '../node.js'

const BACKOFF_MIN = 100
const BACKOFF_MAX = 5_000
/** PeerId multiaddr protocol code (`/p2p/`). */
const P2P_CODE = 421

export interface ConnectionOptions {
  connectTimeout: number
  requestTimeout?: number
  /** Answers Global's requests on the channel (EVICT). */
  handleRequest: RequestHandler
  /** Runs on each new channel before any call may use it; a throw drops the channel (and redials). */
  onOpen: (ctx: RequesterContext) => Promise<void>
  /** The channel closed: what Global sent meanwhile (EVICTs) may have been lost. */
  onClose: () => void
  onBytes: (direction: 'in' | 'out', n: number) => void
}

/** The supervised connection to Global. {@link start} it once; {@link stop} ends it. */
export class GlobalConnection {
  private ctx: RequesterContext | undefined
  private readonly waiters = new Set<() => void>()
  private stoppedFlag = false
  private lastError: Error | undefined
  /** Set while the last dial reached a peer other than the one asked for; calls fail at once. */
  private wrongPeer: GlobalUnreachableError | undefined
  private loop: Promise<void> | undefined
  private wake: (() => void) | undefined
  private firstDone!: () => void
  /**
   * Resolves once the first dial has either opened a channel or failed: until then a Global
   * that is not connected yet is not known to be down (globals.ts waits for it, so the first
   * call of a new Local goes where its key belongs, not to whichever Global connected first).
   */
  readonly firstAttempt = new Promise<void>(resolve => { this.firstDone = resolve })

  constructor (private readonly node: DstoreNode, readonly addrs: Multiaddr[], private readonly options: ConnectionOptions) {}

  start (): void { this.loop ??= this.connectLoop() }

  /** Whether the channel to Global is open now. */
  get connected (): boolean { return this.ctx?.channel.open === true }

  /** The open channel now, if any (no waiting): what {@link GlobalSet} picks among. */
  get current (): RequesterContext | undefined { return this.ctx?.channel.open === true ? this.ctx : undefined }

  /** Whether {@link stop} has run: every call from then on, and every call in flight, ends with ClosedError. */
  get stopped (): boolean { return this.stoppedFlag }

  /**
   * The open channel to Global, waiting for the connect loop up to `connectTimeout`.
   * @throws {ClosedError} once stopped. @throws {GlobalUnreachableError}
   */
  async context (signal?: AbortSignal): Promise<RequesterContext> {
    for (;;) {
      if (this.stoppedFlag) throw new ClosedError('this Local is stopped')
      if (this.ctx?.channel.open === true) return this.ctx
      if (this.wrongPeer !== undefined) throw this.wrongPeer
      this.wake?.()
      await this.waitForChannel(signal)
    }
  }

  /** Stops redialling and closes the channel; resolves once the connect loop has ended (after the node stopped). */
  async stop (stopNode: () => Promise<void>): Promise<void> {
    this.stoppedFlag = true
    this.firstDone()
    this.wake?.()
    for (const w of this.waiters) w()
    await this.ctx?.channel.close().catch(() => {})
    await stopNode()
    await this.loop
  }

  private async waitForChannel (signal?: AbortSignal): Promise<void> {
    // Checked first: an aborted signal's wait would never run, and this one would wait the timeout out.
    throwIfAborted(signal)
    const timeout = this.options.connectTimeout
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer)
        cancelAbort()
        this.waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(() => {
        this.waiters.delete(done)
        cancelAbort()
        const why = this.lastError != null ? `: ${this.lastError.message}` : ''
        reject(new GlobalUnreachableError(`Global at ${this.addrList()} is unreachable after ${timeout} ms${why}`))
      }, timeout)
      const cancelAbort = onAbort(signal, () => { this.waiters.delete(done); clearTimeout(timer); reject(abortError(signal)) })
      this.waiters.add(done)
    })
  }

  private async connectLoop (): Promise<void> {
    let delay = BACKOFF_MIN
    while (!this.stoppedFlag) {
      try {
        await this.connectOnce()
        delay = BACKOFF_MIN
      } catch (err) {
        this.firstDone()
        this.lastError = err as Error
        // Only a dial that reached the wrong peer keeps calls failing at once; any other outcome
        // (Global down, say) is waited for again.
        if (isHandshakeFailure(err)) await this.checkPeer(err as Error)
        else this.wrongPeer = undefined
      }
      this.ctx = undefined
      if (this.stoppedFlag) break
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, delay * (0.75 + Math.random() / 2))
        this.wake = () => { clearTimeout(timer); resolve() }
      })
      delay = Math.min(delay * 2, BACKOFF_MAX)
    }
  }

  /** Dials, opens the channel, runs `onOpen`, serves calls until the channel closes. */
  private async connectOnce (): Promise<void> {
    const connection = await this.node.dial(this.addrs, { signal: AbortSignal.timeout(this.options.connectTimeout) })
    this.wrongPeer = undefined
    const stream = await connection.newStream(RPC_PROTOCOL)
    let closed!: () => void
    const whenClosed = new Promise<void>(resolve => { closed = resolve })
    const channel = new RpcChannel(stream, this.options.handleRequest, {
      requestTimeout: this.options.requestTimeout,
      onClose: (err) => {
        this.lastError = err
        this.options.onClose()
        closed()
      }
    })
    const ctx: RequesterContext = {
      channel,
      connection,
      requestTimeout: this.options.requestTimeout,
      onBytes: this.options.onBytes
    }
    this.lastError = undefined
    try {
      await this.options.onOpen(ctx)
    } catch (err) {
      // Without a successful onOpen (cached values Global may have deleted) the channel must not
      // serve calls: drop it, and try again on the next connection (with backoff).
      this.lastError = err as Error
      channel.abort(err instanceof Error ? err : new Error(String(err)))
      await whenClosed
      throw err
    }
    // Calls use the channel only once onOpen succeeded: `ready()` resolving means no value
    // Global deleted while we were away is still cached.
    this.ctx = ctx
    this.firstDone()
    for (const w of this.waiters) w()
    await whenClosed
  }

  /**
   * After a failed handshake: when the peer at Global's address is not the one its `/p2p/` id
   * names, fail the waiting calls now (and every call until a dial reaches the right peer),
   * naming both ids. libp2p reports that as an EncryptionFailedError ("Unexpected Peer" with
   * TLS, another message with noise), so the peer is asked who it is.
   */
  private async checkPeer (err: Error): Promise<void> {
    const expected = this.addrs.map(a => a.getComponents().find(c => c.code === P2P_CODE)?.value).filter((v): v is string => v != null)
    const actual = await this.actualPeer()
    const wrong = actual !== undefined ? !expected.includes(actual) : /unexpected peer/i.test(err.message)
    if (!wrong || expected.length === 0) { this.wrongPeer = undefined; return }
    this.wrongPeer = new GlobalUnreachableError(
      `the peer at ${this.addrList()} is ${actual ?? 'another peer'}, not ${expected.join(' or ')}: check the /p2p/ id of Global's address`,
      { cause: err })
    for (const w of this.waiters) w()
  }

  /** Who actually answers at Global's address (a dial without the `/p2p/` id), for the message; best effort. */
  private async actualPeer (): Promise<string | undefined> {
    try {
      const bare = this.addrs.map(a => a.decapsulateCode(P2P_CODE))
      const connection = await this.node.dial(bare, { signal: AbortSignal.timeout(Math.min(2000, this.options.connectTimeout)) })
      const id = connection.remotePeer.toString()
      await connection.close().catch(() => {})
      return id
    } catch {
      return undefined
    }
  }

  private addrList (): string { return this.addrs.map(a => a.toString()).join(', ') }
}

/**
 * A failed connection handshake: how libp2p reports a PeerId other than the dialled one
 * (UnexpectedPeerError, which its upgrader rethrows as an EncryptionFailedError).
 */
function isHandshakeFailure (err: unknown): boolean {
  return err instanceof Error && (err.name === 'UnexpectedPeerError' || err.name === 'EncryptionFailedError')
}
