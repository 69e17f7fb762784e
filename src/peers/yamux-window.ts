/**
 * Yamux window updates at half the window, as Go's (hashicorp/yamux) and Rust's yamux send
 * them, instead of after every data frame, as @chainsafe/libp2p-yamux 8 does.
 *
 * js-yamux answers every data frame it receives with a WINDOW_UPDATE frame giving back exactly
 * what the frame used. On dstore's RPC stream that doubles the frames of every small request:
 * the request, the peer's window update, the answer, our window update; each one a TLS record,
 * a write system call and a wake-up of the other side. Held back until half the receive window
 * is used (then all of it is given back in one update), a 100-byte get costs the Global about
 * 15% less CPU and the Local about 8% less, with the same median latency or better
 * (`scripts/measure-small.ts`, two A/B rounds, 2026-12-03: CPU per get 0.254–0.257 ms against
 * 0.294–0.305 on the Global, 0.353–0.360 against 0.375–0.411 on the Local; steady-state p50
 * 0.370 against 0.398–0.406 ms). Bulk transfers did not change measurably (their 64 KiB frames
 * against a window of 256 KiB and up).
 *
 * What stays as it was: an update that carries a flag (the SYN or ACK of a new stream) goes at
 * once, a paused stream (the RPC channel's backpressure, rpc.ts) grants nothing, and the
 * window's growth (doubling while the peer sends fast) is computed when an update goes, over
 * the time since the last one, as in Go. A sender is never starved: half of its window is
 * always still open when the update goes.
 *
 * This replaces one method of the library's exported `YamuxStream` class (pinned by the
 * lockfile; `test/test-yamux-window.spec.ts` fails if its fields change), once per process.
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
