/**
 * The Local daemon (`dstore local`) and how client commands find it.
 *
 * The daemon keeps one Local, with its LRU cache, for as long as it runs, and serves it over
 * HTTP (src/http/server.ts over localBackend). Its URL is in `<repo>/local.http` while it runs.
 * A client command reads that file and asks `GET /status` (a short probe); when the daemon
 * answers, the command goes through it (connectLocal: every byte verified against its CID),
 * so a second `dstore get` of a value is a cache hit. When it does not (no file, a stale file
 * left by a crash, a daemon that hangs), the command falls back to a short-lived Local.
 */
import { keepServingOnUnhandled } from './unhandled.js'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  BLAKE3_BACKEND, connectLocal, createLocal, localBackend, startHttpServer, isLoopbackHost, StorageError,
  createMetrics, createMetricsRegistry, localMetricsSource, localStatus, tuneGcForServing,
  type AbortOptions, type ByteSource, type CatOptions, type CID, type CIDLike, type HttpServer, type LocalClient,
  type LocalPeer, type LocalPutOptions
} from '../src/index.js'
import { makeRepo, resolveGlobal, resolveRepo } from './config.js'
import { listenOrFallBack, parseHttpListen, readTokenFile, removeUrlFile, startDaemonHttp, type HttpListen } from './http-listen.js'
import { LISTEN_OFF, SWARM_LISTENER } from './listen.js'
import { UsageError, formatBytes } from './output.js'

/** The HTTP address `dstore local` listens on unless told otherwise. */
export const DEFAULT_LOCAL_HTTP = '127.0.0.1:5081'
/** Where `dstore local` listens for other Locals (the swarm) unless told otherwise. */
export const DEFAULT_LOCAL_LISTEN = '/ip4/0.0.0.0/tcp/4002'
/** The file naming a running daemon's URL, in the repository. */
export const LOCAL_HTTP_FILE = 'local.http'
/** How long a client command waits for the daemon to answer its probe before falling back. */
const PROBE_TIMEOUT = 1000
/** How long a client command waits for the daemon without a byte (see findDaemon). */
const READ_TIMEOUT = 5 * 60_000

/**
 * What client commands use of a Local: a LocalPeer in this process, or a LocalClient of the
 * daemon. Both have these methods, with the same results and the same errors.
 */
export interface LocalApi {
  stat: (cid: CIDLike, options?: AbortOptions) => Promise<{ cid: CID, size: number, cached: boolean }>
  cat: (cid: CIDLike, options?: CatOptions) => AsyncIterable<Uint8Array>
  put: (source: ByteSource, options?: LocalPutOptions) => Promise<CID>
  missing: (cids: CIDLike[], options?: AbortOptions) => Promise<CID[]>
  delete: (cid: CIDLike, options?: AbortOptions) => Promise<boolean>
  list: (options?: AbortOptions) => AsyncIterable<{ cid: CID, size: number }>
  stop: () => Promise<void>
}

/**
 * Who may write through the daemon's HTTP, in its /status (`writes`): `open` (a loopback
 * listener without a token: any local process), `token` (a bearer token is needed), or
 * `read-only`. Client commands that write (put, rm) use the daemon only when it is `open`.
 */
export type DaemonWrites = 'open' | 'token' | 'read-only'

/**
 * A client of the daemon named by `<repo>/local.http`, if one answers now (and, for a command
 * that writes, lets it write); undefined otherwise (the caller falls back to a short-lived Local).
 */
export async function findDaemon (repo: string, signal: AbortSignal, options: { write?: boolean, global?: string[] } = {}): Promise<LocalClient | undefined> {
  let url: string
  try {
    url = (await readFile(join(repo, LOCAL_HTTP_FILE), 'utf8')).trim()
  } catch {
    return undefined
  }
  if (url === '') return undefined
  let probe: LocalClient
  try {
    probe = connectLocal({ url, timeout: PROBE_TIMEOUT })
  } catch {
    return undefined // not a URL: a damaged file
  }
  try {
    const status = await probe.stats({ signal: AbortSignal.any([signal, AbortSignal.timeout(PROBE_TIMEOUT)]) })
    if (status.role !== 'local') return undefined // something else on that port now
    // A write would be refused (401/403) after a put had begun to read its source: don't start it there.
    if (options.write === true && status.writes !== 'open') return undefined
    // A Global named by --global or DSTORE_GLOBAL: only a daemon that talks to that one will do.
    if (options.global !== undefined && !sameGlobal(options.global, (status.global as { addrs?: unknown } | undefined)?.addrs)) return undefined
  } catch {
    if (signal.aborted) throw signal.reason
    return undefined
  } finally {
    await probe.stop()
  }
  // The probe's short timeout is for the probe only. A read of a value larger than the daemon's
  // cache sends nothing until the daemon has streamed the whole value once to build its
  // outboard (about 200 MB/s here): allow for values of tens of GB. Ctrl+C still ends it.
  return connectLocal({ url, timeout: READ_TIMEOUT })
}

export interface LocalDaemonOptions {
  repo?: string
  global?: string[]
  cacheSize: number
  connectTimeout: number
  /** Largest HTTP put body (413 above it). @default none here (Global's own limit still applies) */
  maxBlobSize?: number
  /** ms between re-checks of the cached CIDs (0: never). */
  recheckInterval?: number
  http?: HttpListen
  httpToken?: string
  /** The swarm's listen addresses (`--listen`), or [{@link LISTEN_OFF}]. @default [DEFAULT_LOCAL_LISTEN] */
  listen?: string[]
  /** `--swarm on|off`. @default true */
  swarm?: boolean
  json?: boolean
  version: string
}

/**
 * Sets a serving daemon's GC policy (src/peers/serving-gc.ts), as `dstore global` and `dstore
 * local` do. → what is in force, for their `--json` document: `serving`, or `node` when node's
 * own --heap-growing-percent wins (the opt-out).
 */
export function applyServingGc (): 'serving' | 'node' {
  return tuneGcForServing() ? 'serving' : 'node'
}

/** `dstore local`: runs until SIGINT or SIGTERM, then stops cleanly (local.http removed). */
export async function runLocalDaemon (opts: LocalDaemonOptions): Promise<void> {
  const repo = resolveRepo(opts.repo)
  // Read before anything starts: a bad token file starts nothing.
  const token = opts.httpToken !== undefined ? await readTokenFile(opts.httpToken) : undefined
  await makeRepo(repo)
  // One daemon per repository: a second would take over local.http, and remove it when it
  // stops, leaving the first running with no client able to find it.
  const running = await findDaemon(repo, new AbortController().signal)
  if (running !== undefined) {
    await running.stop()
    throw new UsageError(`a Local daemon already runs for ${repo} at ${running.url} (stop it first, or give another --repo)`, 1)
  }
  const addrs = opts.global !== undefined && opts.global.length > 0 ? opts.global : (await resolveGlobal(undefined, repo)).addrs
  // Listen for the stop signals first: a supervisor (or a test) may send SIGTERM as soon as it
  // reads the first line, and a signal with no listener kills the process without cleanup.
  const stopped = new Promise<NodeJS.Signals>(resolve => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  const swarm = opts.swarm !== false
  // With the swarm off nothing listens; `--listen off`: the swarm fetches from others, serves nobody.
  const listenAddrs = !swarm || opts.listen?.[0] === LISTEN_OFF ? [] : opts.listen ?? [DEFAULT_LOCAL_LISTEN]
  const notes: string[] = []
  if (!swarm && opts.listen !== undefined && opts.listen[0] !== LISTEN_OFF) notes.push('--swarm off: the --listen addresses are not listened on')
  // One registry for this Local: libp2p's series and dstore's (GET /metrics); a new one for each
  // attempt, since a failed start may have registered libp2p's series in the last.
  let registry = createMetricsRegistry()
  // A Local daemon is a serving process as a Global is (its gets from Global and the swarm's
  // transfers go through TLS; its HTTP responses carry the same values).
  const gcPolicy = applyServingGc()
  const start = async (listen: string[]): Promise<LocalPeer> => {
    registry = createMetricsRegistry()
    return await createLocal({ global: addrs, repo, cacheSize: opts.cacheSize, connectTimeout: opts.connectTimeout, recheckInterval: opts.recheckInterval, metricsRegistry: registry, listen, swarm })
  }
  let local: LocalPeer
  try {
    // The default address taken (another daemon on this host): a free port, and a Note saying so.
    const started = await listenOrFallBack(SWARM_LISTENER, listenAddrs, opts.listen !== undefined, start)
    local = started.server
    if (started.note !== undefined) notes.push(started.note)
  } catch (err) {
    // The repository's identity (a corrupt or unreadable local.key) is not the address's fault;
    // nor is a listen address that cannot be listened on (listenOrFallBack's one line).
    if (err instanceof StorageError || err instanceof UsageError) throw err
    throw new UsageError(`bad Global address ${addrs.join(', ')}: ${(err as Error).message}`, 2)
  }
  const log = (line: string): void => { process.stderr.write(`dstore: ${line}\n`) }
  keepServingOnUnhandled(log)
  const listen = opts.http ?? parseHttpListen(DEFAULT_LOCAL_HTTP)
  const file = join(repo, LOCAL_HTTP_FILE)
  const writes: DaemonWrites = token !== undefined ? 'token' : listen !== 'off' && isLoopbackHost(listen.host) ? 'open' : 'read-only'
  let http: HttpServer | undefined
  if (listen !== 'off') {
    // Once, outside the listen attempts: a second registration of a name in one registry throws.
    const metrics = createMetrics({ role: 'local', source: localMetricsSource(local), registry, version: opts.version, peerId: local.peerId })
    try {
      const started = await startDaemonHttp(listen, opts.http !== undefined, file, token, async (host, port) => await startHttpServer({
        host,
        port,
        // `writes` tells client commands whether put and rm may go through this daemon (findDaemon).
        backend: localBackend(local, { status: async () => ({ ...await localStatus(local, { version: opts.version, url: http?.url }), writes }) }),
        metrics,
        token,
        maxBlobSize: opts.maxBlobSize,
        log
      }))
      http = started.server
      notes.push(...started.notes)
    } catch (err) {
      await local.stop()
      throw err
    }
  }
  // Not awaited: the daemon serves at once, and its calls wait for Global as a Local's do.
  local.ready().catch(() => { if (!local.connected) log(`Global at ${addrs.join(', ')} is not reachable yet; still trying`) })
  const cacheSize = local.cache.maxBytes
  // Where other Locals dial this one (also in /status `swarm.addrs`).
  const swarmAddrs = local.swarmAddrs
  if (opts.json === true) {
    process.stdout.write(JSON.stringify({ peerId: local.peerId, global: addrs, repo, cacheSize, http: http?.url ?? null, ...(http !== undefined ? { httpFile: file } : {}), swarm: { enabled: swarm, addrs: swarmAddrs }, gcPolicy, blake3: BLAKE3_BACKEND }) + '\n')
  } else {
    process.stdout.write(`Local daemon for Global ${addrs.join(', ')}\nPeerId: ${local.peerId}\nCache: ${formatBytes(cacheSize)}\n`)
    if (http !== undefined) process.stdout.write(`HTTP: ${http.url} (URL in ${file})\n`)
    if (!swarm) process.stdout.write('Swarm: off\n')
    else if (swarmAddrs.length === 0) process.stdout.write('Swarm: on, serving no other Local (--listen off)\n')
    else for (const addr of swarmAddrs) process.stdout.write(`Swarm: ${addr}\n`)
    for (const line of notes) process.stdout.write(`Note: ${line}\n`)
    process.stdout.write('Press Ctrl+C to stop.\n')
  }
  await stopped
  if (http !== undefined) {
    // The file first: a command that starts now falls back instead of probing a closing server.
    await removeUrlFile(file)
    await http.close()
  }
  await local.stop()
  if (opts.json !== true) process.stdout.write('Local stopped.\n')
}

/**
 * Whether addresses `named` and a daemon's Global addresses are the same Global: the same
 * `/p2p/` PeerId when both name one, else a common address.
 */
export function sameGlobal (named: string[], daemon: unknown): boolean {
  if (!Array.isArray(daemon)) return false
  const theirs = daemon.filter((a): a is string => typeof a === 'string')
  const idOf = (addr: string): string | undefined => /\/p2p\/([^/]+)/.exec(addr)?.[1]
  const ids = new Set(theirs.map(idOf).filter((id): id is string => id !== undefined))
  return named.some(a => {
    const id = idOf(a)
    return id !== undefined && ids.size > 0 ? ids.has(id) : theirs.includes(a)
  })
}
