/**
 * The contract between the bench orchestrator (`bench/compare.ts`) and the role processes
 * (`bench/roles/<system>.ts`). Each role is its own process speaking JSON lines on
 * stdin/stdout (see `lib/child.ts`): one command per line, one answer per line, `{ error }` on
 * failure. The same scenario runs against every system through these commands alone.
 *
 * Systems: `dstore` (a Global as provider, a Local as requester; `encryption` picks tls or
 * noise) and `helia` (helia + @helia/unixfs + @helia/bitswap, fs blockstore, TCP + noise +
 * yamux, no bootstrap, no DHT).
 */

/** Commands both roles understand. */
export type CommonCommand =
  | { cmd: 'rss' } // → RssAnswer: peak RSS since the last reset, and RSS now
  | { cmd: 'reset-rss' } // → { ok: true }
  | { cmd: 'cpu' } // → { cpuMs }: CPU time used by the process so far (answered by lib/serve.ts for every role)
  | { cmd: 'exit' } // → { ok: true }, then the process exits

export interface RssAnswer { peakMiB: number, rssMiB: number }

/** Provider: the node that stores values and serves them (dstore Global, Helia provider). */
export type ProviderCommand =
  | CommonCommand
  /**
   * Starts the node with a fresh store in `dir`, or with `keep` on the store already there
   * (what an earlier provider process stored). → StartAnswer (with `addrs`).
   */
  | { cmd: 'start', dir: string, encryption?: 'tls' | 'noise', keep?: boolean }
  /** Stores `size` bytes of `data(size, seed)` in the provider itself. → PutAnswer */
  | { cmd: 'put', size: number, seed: number }
  /** Stores `count` values of `size` bytes, seeds `seed`, `seed + 1`, … → { cids: string[] } */
  | { cmd: 'putMany', count: number, size: number, seed: number }
  /**
   * dstore only: writes `data(size, seed)` to a new file beside the store the way its fs store
   * does (4 MiB writes, fdatasync, rename, folder fsync), the plain-write reference beside the
   * put. → { ms, bytes }
   */
  | { cmd: 'plainWrite', size: number, seed: number }
  /** Stops the node (the process stays). → { ok: true } */
  | { cmd: 'stop' }

/** Requester: the node that fetches (dstore Local, Helia requester). */
export type RequesterCommand =
  | CommonCommand
  /**
   * Starts the node with an empty store/cache in `dir`, connected to the provider at `addrs`
   * (the answer comes once it is connected). → StartAnswer
   */
  | { cmd: 'start', dir: string, addrs: string[], encryption?: 'tls' | 'noise', stream?: boolean }
  /**
   * Fetches a whole value, streaming and counting verified bytes (never holding the value).
   * Cold the first time after `start`, warm after. → GetAnswer
   */
  | { cmd: 'get', cid: string, size: number, keep?: boolean }
  /**
   * dstore only: copies the value the last `get` with `keep` returned (a fresh buffer, timed
   * apart from the get: the caller's copy). → { ms, bytes }
   */
  | { cmd: 'copy' }
  /**
   * dstore only: makes (and touches) the caller's buffer of `size` bytes that `getInto` gets
   * into, or drops it (`size` 0). → { ok: true }
   */
  | { cmd: 'into', size: number }
  /** dstore only: `Local.get(cid, { into })` into the buffer `into` made. → GetAnswer */
  | { cmd: 'getInto', cid: string, size?: number }
  /** Fetches `cids` one after the other. → { ms: number[] } (one latency per get, in ms) */
  | { cmd: 'getSeq', cids: string[], size?: number }
  /** Fetches `cids` all at once. → { totalMs: number } */
  | { cmd: 'getConcurrent', cids: string[], size?: number }
  /** Puts through the network to the provider (dstore only: Local.put). → PutAnswer */
  | { cmd: 'put', size: number, seed: number }
  /**
   * Generates the value of the next `putPrepared` (dstore only), so that a CPU window around
   * the put does not include generating its data. → { ok: true }
   */
  | { cmd: 'prepare', size: number, seed: number }
  /** Puts the value `prepare` generated, as `put` does (dstore only). → PutAnswer */
  | { cmd: 'putPrepared' }
  /** Stops the node (the process stays). → { ok: true } */
  | { cmd: 'stop' }

export interface StartAnswer {
  /** Multiaddrs to dial (provider only). */
  addrs?: string[]
  /** Milliseconds from process start (imports included) until this first start was ready. */
  startMs: number
}

export interface PutAnswer { cid: string, ms: number }
export interface GetAnswer { ms: number, bytes: number }

/*
 * Optional additions (a role may ignore them; the orchestrator checks them when present):
 * - requester `start` with `stream: true`: the requester must stream values through and not
 *   keep them (dstore: a Local without a cache; the peak-RSS scenario);
 * - `getSeq` / `getConcurrent` with `size`: every value has this size; the answer may add
 *   `bytes` (total bytes fetched) and `hits` (gets answered from a local cache);
 * - `get` may add `hit` (answered from a local cache) to its GetAnswer.
 */
export interface ManyGetExtras { bytes?: number, hits?: number }
