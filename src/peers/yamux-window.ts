/**
 * Yamux window updates once half the receive window is used, the threshold Go's and Rust's
 * yamux use, instead of after every data frame, as @chainsafe/libp2p-yamux 8 sends them. (Go
 * and Rust give back what the application has read; js-yamux gives back what arrived, and so
 * does this: only the threshold is theirs.)
 *
 * js-yamux answers every data frame it receives with a WINDOW_UPDATE frame giving back exactly
 * what the frame used. On dstore's RPC stream that doubles the frames of every small request:
 * the request, the peer's window update, the answer, our window update; each one a TLS record,
 * a write system call and a wake-up of the other side. Held back until half the receive window
 * is used (then all of it is given back in one update), a 100-byte get costs the Global about
 * 15% less CPU and the Local about 8% less, with the same median latency or better
 * (`scripts/measure-small.ts`, two A/B rounds, 2026-12-03: CPU per get 0.254–0.257 ms against
 * 0.294–0.305 on the Global, 0.353–0.360 against 0.375–0.411 on the Local; steady-state p50
 * 0.370 against 0.398–0.406 ms). Bulk transfers did not change measurably on loopback (same
 * A/B, 256 MiB, receiver CPU s/GB: a get into a buffer 2.43 against 2.48–2.59, `Local.cat`
 * 2.55–2.62 against 2.62–2.64).
 *
 * What stays as it was: an update that carries a flag (the SYN or ACK of a new stream) goes at
 * once, a paused stream (the RPC channel's backpressure, rpc.ts) grants nothing (and its
 * resume re-checks), and the library's window growth (doubling when an epoch took at most
 * 4 RTTs) is evaluated when an update goes. The update goes as soon as more than half the
 * window is used, and gives all of it back, so a sender waits on it at most as long as on a
 * half-size window; what a peer may have in flight is still at most one receive window (the
 * bounds of docs/PROTOCOL.md). An epoch now spans a round trip, not a frame, so the growth
 * rule sees longer epochs; with the ping RTT rounded to 0 ms (loopback) it may not double the
 * window where the library's own rule did (test-yamux-window's 2 MiB of small frames still
 * took only 4 updates, so it grew there; not measured over a real link).
 *
 * This replaces one method of the library's exported `YamuxStream` class (tested against the
 * version in package-lock.json; a dependent's install may resolve a later 8.x, where the rule
 * defers to the library whenever the fields it reads are not numbers, and
 * `test/test-yamux-window.spec.ts` checks the rule on a real connection), once per process:
 * every yamux stream of the process gets it, those of libp2p nodes an application makes beside
 * dstore's too.
 */
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'

/** The fields of a YamuxStream the rule reads (private in its types). */
interface WindowFields {
  state: StreamState
  recvWindow: unknown
  recvWindowCapacity: unknown
}

let installed = false

/** Installs the half-window rule on every yamux stream of this process (idempotent). */
export function installYamuxWindowRule (): void {
  if (installed) return
  installed = true
  const proto = YamuxStream.prototype as unknown as { sendWindowUpdate: (this: WindowFields) => void }
  const original = proto.sendWindowUpdate
  proto.sendWindowUpdate = function (this: WindowFields): void {
    const { recvWindow, recvWindowCapacity } = this
    // Only an established stream with no flag to send, and only while at least half its window
    // is still open; anything else (or fields this rule does not know) is the library's.
    if (this.state === StreamState.Established && typeof recvWindow === 'number' && typeof recvWindowCapacity === 'number' &&
      recvWindowCapacity >= recvWindow / 2) return
    original.call(this)
  }
}
