/**
 * `--http HOST:PORT|off` (dstore global, dstore local): parsing the value, listening with the
 * "default port taken -> a free port, and say so" fallback (also used by `dstore local --listen`), the `<repo>/{global,local}.http`
 * file naming the URL, and reading `--http-token FILE`.
 */
import { readFile, rm, writeFile, rename } from 'node:fs/promises'
import { isIP } from 'node:net'
import { InvalidArgumentError } from 'commander'
import { isLoopbackHost, type HttpServer } from '../src/index.js'
import { UsageError } from './output.js'

/** Where to listen, or `off`. */
export type HttpListen = { host: string, port: number } | 'off'

const USAGE = 'give HOST:PORT (127.0.0.1:5080, [::1]:5080, 0.0.0.0:5080; PORT 0 for a free one) or off'

/** commander's parser for `--http`. */
export function parseHttpListen (value: string): HttpListen {
  const text = value.trim()
  if (text.toLowerCase() === 'off') return 'off'
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text)
  if (m === null) throw new InvalidArgumentError(USAGE)
  const host = m[1] ?? m[2]
  const port = Number(m[3])
  if (port > 65535) throw new InvalidArgumentError(`port ${port} is above 65535; ${USAGE}`)
  if (m[1] !== undefined && isIP(host) !== 6) throw new InvalidArgumentError(`${host} in brackets is not an IPv6 address; ${USAGE}`)
  if (m[1] === undefined && isIP(host) !== 4 && host !== 'localhost') throw new InvalidArgumentError(`${host} is not an IP address; ${USAGE}`)
  return { host, port }
}

const WHY: Record<string, string> = {
  EADDRINUSE: 'address already in use (use another port, or PORT 0 for a free one)',
  EADDRNOTAVAIL: 'no network interface on this machine has that address',
  EACCES: 'permission denied (ports below 1024 need privileges)'
}

/** How {@link listenOrFallBack} names one kind of listener and finds out why it could not listen. */
export interface ListenerKind<A> {
  /** What listens, in "cannot listen for NAME on ADDRESS" (`HTTP`, `the swarm`). */
  name: string
  /** Its port, in "PORT N is taken" (`HTTP port`, `swarm port`). */
  port: string
  /** Why each errno happens, with the fix; another errno is not explained (the error is rethrown). */
  why: Record<string, string>
  /** The errno behind a failure to listen and the address it failed on; undefined for any other failure. */
  failure: (err: unknown, listen: A) => Promise<{ code: string, where: string } | undefined>
  /** The same listener on a free port, and the port it asked for. */
  free: (listen: A) => { listen: A, port: number }
}

const HTTP_LISTENER: ListenerKind<{ host: string, port: number }> = {
  name: 'HTTP',
  port: 'HTTP port',
  why: WHY,
  failure: async (err, listen) => {
    const code = (err as NodeJS.ErrnoException).code
    return code === undefined ? undefined : { code, where: `${listen.host}:${listen.port}` }
  },
  free: (listen) => ({ listen: { host: listen.host, port: 0 }, port: listen.port })
}

/**
 * Calls `start(listen)`; when the address was not given explicitly and its port is taken, tries
 * again on a free port and returns a `note` saying so. A listen failure that `kind` explains is
 * one usage line (exit 1); any other failure is rethrown.
 */
export async function listenOrFallBack<A, T> (kind: ListenerKind<A>, listen: A, explicit: boolean,
  start: (listen: A) => Promise<T>): Promise<{ server: T, note?: string }> {
  try {
    return { server: await start(listen) }
  } catch (err) {
    const failure = await kind.failure(err, listen)
    if (failure === undefined || kind.why[failure.code] === undefined) throw err
    if (explicit || failure.code !== 'EADDRINUSE') throw new UsageError(`cannot listen for ${kind.name} on ${failure.where}: ${kind.why[failure.code]}`, 1)
    const free = kind.free(listen)
    return { server: await start(free.listen), note: `${kind.port} ${free.port} is taken, so a free port was chosen` }
  }
}

/** {@link listenOrFallBack} for an HTTP listener (`--http`). */
export async function listenWithFallback<T> (listen: { host: string, port: number }, explicit: boolean,
  start: (host: string, port: number) => Promise<T>): Promise<{ server: T, note?: string }> {
  return await listenOrFallBack(HTTP_LISTENER, listen, explicit, async (l) => await start(l.host, l.port))
}

/**
 * A daemon's HTTP listener, as `dstore global` and `dstore local` start theirs: `start` with the
 * free-port fallback, its URL written to `file`, and the lines the banner adds (`Note:`): the
 * fallback, and that a non-loopback listener without a token is read-only. A failure after the
 * listener is up closes it.
 */
export async function startDaemonHttp (listen: { host: string, port: number }, explicit: boolean, file: string, token: string | undefined,
  start: (host: string, port: number) => Promise<HttpServer>): Promise<{ server: HttpServer, notes: string[] }> {
  const { server, note } = await listenWithFallback(listen, explicit, start)
  try {
    await writeUrlFile(file, server.url)
  } catch (err) {
    await server.close()
    throw err
  }
  const notes = note === undefined ? [] : [note]
  if (token === undefined && !isLoopbackHost(listen.host)) notes.push(`HTTP on ${listen.host} is read-only: give --http-token FILE to allow writes`)
  return { server, notes }
}

/** Writes `url` to `path` (atomically: a reader never sees half a URL). */
export async function writeUrlFile (path: string, url: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`
  await writeFile(tmp, url + '\n')
  await rename(tmp, path)
}

/** Removes the URL file (a clean stop). */
export async function removeUrlFile (path: string): Promise<void> {
  await rm(path, { force: true })
}

/** The token in `--http-token FILE`: its first line, trimmed; an empty or unreadable file is a usage error. */
export async function readTokenFile (path: string): Promise<string> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new UsageError(`cannot read the HTTP token file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2)
  }
  const token = text.split(/\r?\n/)[0].trim()
  if (token === '') throw new UsageError(`the HTTP token file ${path} is empty (put the token on its first line)`, 2)
  if (/\s/.test(token)) throw new UsageError(`the HTTP token in ${path} has spaces in it: a bearer token is one word`, 2)
  return token
}
