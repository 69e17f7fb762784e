/**
 * `--http HOST:PORT|off` (dstore global, dstore local): parsing the value, listening with the
 * "default port taken -> a free port, and say so" fallback, the `<repo>/{global,local}.http`
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

/**
 * Calls `start(host, port)`; when the port was not given explicitly and is taken, tries again
 * on a free port and returns a `note` saying so. Any other listen failure is one usage line (exit 1).
 */
export async function listenWithFallback<T> (listen: { host: string, port: number }, explicit: boolean,
  start: (host: string, port: number) => Promise<T>): Promise<{ server: T, note?: string }> {
  try {
    return { server: await start(listen.host, listen.port) }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === undefined || WHY[code] === undefined) throw err
    if (explicit || code !== 'EADDRINUSE') throw new UsageError(`cannot listen for HTTP on ${listen.host}:${listen.port}: ${WHY[code]}`, 1)
    return { server: await start(listen.host, 0), note: `HTTP port ${listen.port} is taken, so a free port was chosen` }
  }
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
