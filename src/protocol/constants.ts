/**
 * Protocol ids, message kinds and limits of the dstore wire protocol (`docs/PROTOCOL.md`,
 * "Wire protocol"). Every limit a remote peer could push against is named here.
 */

/** Long-lived request/response stream: small requests, pipelined, and Global's eviction notices. */
export const RPC_PROTOCOL = '/dstore/rpc/2.0.0'
/** One stream per large transfer: a verified GET stream or a streaming PUT. */
export const BLOB_PROTOCOL = '/dstore/blob/1.0.0'

/** Message kinds. A response carries its request's kind with {@link RESPONSE} set, or {@link KIND.ERROR}. */
export const KIND = {
  /** STAT a batch of CIDs: size of each, or absent. HAS is a STAT. */
  STAT: 0x01,
  /** GET a byte range: answered inline with the verified stream, or with a size and a pointer to the blob protocol. */
  GET: 0x02,
  /** PUT a small value inline. */
  PUT: 0x03,
  /** DELETE a value from Global; every connected Local evicts it before the answer. */
  DELETE: 0x04,
  /** LIST Global's pins, a page at a time. */
  LIST: 0x05,
  /** Global → Local: evict these CIDs. The Local answers once they are gone. */
  EVICT: 0x06,
  /** Local → Global: this range of a value failed verification here; Global re-checks its copy. */
  REPORT: 0x07,
  /** On a blob stream: the receiver allows the sender this many bytes in total (flow control). */
  CREDIT: 0x08,
  /** Local → Global: the Local's swarm addresses, and values it now holds, is fetching, or dropped. */
  ANNOUNCE: 0x09,
  /** Local → Global: the size of a value and the Locals that can serve ranges of it. */
  SOURCES: 0x0a,
  /** Local → Global: may this peer read? (a Local serves peers that Global would let read). */
  VOUCH: 0x0b,
  /** Local → Global: this peer sent bytes of this value that failed verification. */
  BADPEER: 0x0c,
  /** Local → Local: which pieces of a value do you hold, and which are you fetching? */
  HAVE: 0x0d,
  /** An error answer to any request. */
  ERROR: 0x7f
} as const

/** Bit set on the kind of a response. */
export const RESPONSE = 0x80

/** Largest frame on the rpc stream (payload), and the largest request head on a blob stream. */
export const MAX_FRAME = 1024 * 1024 + 4096
/** Largest value put inline on the rpc stream, and largest verified range answered inline. */
export const INLINE_MAX = 256 * 1024
/** Most CIDs in one STAT or EVICT message, and most entries in one LIST page. */
export const MAX_BATCH = 4096
/** Requests one rpc stream may have in progress at Global at once; further ones wait (backpressure). */
export const MAX_RPC_INFLIGHT = 128
/** Inbound rpc streams per connection (a Local needs one). */
export const MAX_RPC_STREAMS = 4
/** Inbound blob streams per connection: concurrent large transfers. */
export const MAX_BLOB_STREAMS = 64
/**
 * Flow-control window of a blob stream: a sender may be at most this many bytes ahead of what
 * the receiver has consumed. Implicit at the start; the receiver extends it with CREDIT
 * messages. It bounds what either side buffers for a transfer, whatever libp2p buffers below.
 */
export const BLOB_WINDOW = 8 * 1024 * 1024
/**
 * A request gets this long to be answered; a transfer, this long without progress (see
 * {@link MIN_TRANSFER_PROGRESS}); a frame, this long to arrive once its first byte has; an
 * answer, this long to be written while the peer does not read.
 */
export const REQUEST_TIMEOUT_MS = 30_000
/**
 * Progress of a transfer: at least this many bytes read or written within a request timeout.
 * A peer dripping bytes more slowly (a slowloris) is cut off as if it had stopped.
 */
export const MIN_TRANSFER_PROGRESS = 16 * 1024
/**
 * Bytes an rpc stream may hold unread while Global has paused reading it (all of
 * {@link MAX_RPC_INFLIGHT} requests in progress): yamux's largest stream window, which is all a
 * peer can send once we stop granting window, so an honest peer never reaches it (libp2p resets
 * a stream whose paused buffer goes past it).
 */
export const MAX_PAUSED_BUFFER = 16 * 1024 * 1024 + 64 * 1024
/**
 * Default of the connections one peer may have open to Global at once (`maxConnectionsPerPeer`).
 * A Local needs one, but every Local and CLI command on a machine that share a repository share
 * its identity, so this allows that many at once. Further ones are closed as they open.
 */
export const MAX_CONNECTIONS_PER_PEER = 32
/** Most bytes of a value one REPORT makes Global re-check (one decoder batch). */
export const MAX_REPORT_RANGE = 1024 * 1024
/** How long Global waits for Locals to confirm an eviction before closing their connection. */
export const EVICT_TIMEOUT_MS = 5_000

/** Values at least this large are fetched through the swarm (smaller ones: straight from Global). */
export const SWARM_MIN_SIZE = 4 * 1024 * 1024
/** Most sources in one SOURCES answer (or GET answer of mode sources). */
export const SWARM_MAX_SOURCES = 8
/** Most addresses one Local announces, and one source entry carries. */
export const SWARM_MAX_ADDRS = 8
/** Longest multiaddr accepted in an ANNOUNCE or a source entry, in bytes. */
export const SWARM_MAX_ADDR_LEN = 256
