/**
 * Helpers for tests of the HTTP server: requests that reach it exactly as written (node:http,
 * which, unlike fetch, does not normalise `..` or percent-encodings), and raw socket bytes.
 */
import { request } from 'node:http'
import { connect } from 'node:net'

export interface RawResponse { status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }

/** One request to `base` (http://host:port) for `path` as given. */
export async function raw (base: string, path: string, opts: { method?: string, headers?: Record<string, string>, body?: Uint8Array | string } = {}): Promise<RawResponse> {
  const u = new URL(base)
  return await new Promise((resolve, reject) => {
    const req = request({ host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (b: Buffer) => parts.push(b))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** Writes `bytes` on a fresh connection and resolves with all it gets back before the server closes it (or `ms` pass). */
export async function rawSocket (port: number, bytes: Uint8Array | string, ms = 5000): Promise<{ text: string, closed: boolean, elapsed: number }> {
  return await new Promise((resolve) => {
    const t0 = Date.now()
    const s = connect({ port, host: '127.0.0.1' })
    let text = ''
    const timer = setTimeout(() => { s.destroy(); resolve({ text, closed: false, elapsed: Date.now() - t0 }) }, ms)
    s.on('data', (b: Buffer) => { text += b.toString('latin1') })
    s.on('error', () => {})
    s.on('close', () => { clearTimeout(timer); resolve({ text, closed: true, elapsed: Date.now() - t0 }) })
    s.write(bytes)
  })
}

/** The status of the first response in raw socket output. */
export function statusIn (text: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)
}
