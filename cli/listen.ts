/**
 * `dstore global --listen`: which addresses are accepted (a usage error otherwise), and what
 * to say when one cannot be listened on. libp2p reports that only as
 * `UnsupportedListenAddressesError`, whose text is its own configuration advice with the
 * listen error's stack in it; the failing address and its errno are found here instead, by
 * trying to listen on each address the same way.
 */
import { createServer } from 'node:net'
import { InvalidArgumentError } from 'commander'
import { multiaddr } from '@multiformats/multiaddr'

const TCP = /^\/(ip4|ip6)\/([^/]+)\/tcp\/(\d+)$/

/** commander's parser for each `--listen` value: a TCP multiaddr on an IP address. */
export function checkListen (value: string, previous: string[] | undefined): string[] {
  let text: string
  try {
    text = multiaddr(value).toString()
  } catch (err) {
    throw new InvalidArgumentError(`not a multiaddr (${(err as Error).message})`)
  }
  const m = TCP.exec(text)
  if (m === null || Number(m[3]) > 65535) throw new InvalidArgumentError('Global listens on TCP only: give /ip4/HOST/tcp/PORT or /ip6/HOST/tcp/PORT (PORT 0 for a free one)')
  return [...(previous ?? []), value]
}

const WHY: Record<string, string> = {
  EADDRINUSE: 'address already in use (use another port, or /tcp/0 for a free one)',
  EADDRNOTAVAIL: 'no network interface on this machine has that address',
  EACCES: 'permission denied (ports below 1024 need privileges)'
}

/**
 * For libp2p's listen failure (by its name), the first address that cannot be listened on and
 * its errno `code`, with one line saying so; `undefined` for any other error.
 */
export async function describeListenFailure (err: unknown, addrs: string[]): Promise<{ line: string, code?: string } | undefined> {
  if ((err as Error)?.name !== 'UnsupportedListenAddressesError') return undefined
  for (const addr of addrs) {
    const m = TCP.exec(addr)
    if (m === null) continue
    const code = await tryListen(m[2], Number(m[3]))
    if (code !== undefined) return { line: `cannot listen on ${addr}: ${WHY[code] ?? code}`, code }
  }
  return { line: `cannot listen on ${addrs.join(', ')}` }
}

/** The errno code of listening on host:port, or undefined if that works (now). */
async function tryListen (host: string, port: number): Promise<string | undefined> {
  return await new Promise(resolve => {
    const server = createServer()
    server.once('error', (e: NodeJS.ErrnoException) => { resolve(e.code ?? 'EUNKNOWN') })
    server.listen({ host, port, exclusive: true }, () => { server.close(() => { resolve(undefined) }) })
  })
}
