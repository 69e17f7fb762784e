/**
 * `dstore global --listen` and `dstore local --listen` (the swarm's listener): which addresses
 * are accepted (a usage error otherwise), and what to say when one cannot be listened on.
 * libp2p reports that only as `UnsupportedListenAddressesError`, whose text is its own
 * configuration advice with the listen error's stack in it; the failing address and its errno
 * are found here instead, by trying to listen on each address the same way.
 */
import { createServer } from 'node:net'
import { InvalidArgumentError } from 'commander'
import { multiaddr } from '@multiformats/multiaddr'
import type { ListenerKind } from './http-listen.js'

const TCP = /^\/(ip4|ip6)\/([^/]+)\/tcp\/(\d+)$/

/** commander's parser for each `dstore global --listen` value: a TCP multiaddr on an IP address. */
export function checkListen (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), tcpAddress(value, 'Global')]
}

/** What `dstore local --listen off` parses to: serve no other Local. */
export const LISTEN_OFF = 'off'

/**
 * commander's parser for each `dstore local --listen` value: a TCP multiaddr on an IP address,
 * or `off` alone ({@link LISTEN_OFF}: listen for nobody).
 */
export function checkLocalListen (value: string, previous: string[] | undefined): string[] {
  const list = previous ?? []
  const off = value.trim().toLowerCase() === LISTEN_OFF
  if (off ? list.length > 0 : list.includes(LISTEN_OFF)) throw new InvalidArgumentError('off means no listener: give it alone, not with addresses')
  return off ? [LISTEN_OFF] : [...list, tcpAddress(value, 'A Local')]
}

/** `value` if it is a TCP multiaddr on an IP address; else a usage error naming `who`. */
function tcpAddress (value: string, who: string): string {
  let text: string
  try {
    text = multiaddr(value).toString()
  } catch (err) {
    throw new InvalidArgumentError(`not a multiaddr (${(err as Error).message})`)
  }
  const m = TCP.exec(text)
  if (m === null || Number(m[3]) > 65535) throw new InvalidArgumentError(`${who} listens on TCP only: give /ip4/HOST/tcp/PORT or /ip6/HOST/tcp/PORT (PORT 0 for a free one)`)
  return value
}

const WHY: Record<string, string> = {
  EADDRINUSE: 'address already in use (use another port, or /tcp/0 for a free one)',
  EADDRNOTAVAIL: 'no network interface on this machine has that address',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  // libp2p refused the addresses but listening on each works now (a race, or a transport's own refusal).
  EUNKNOWN: 'libp2p could not listen there'
}

/**
 * For libp2p's listen failure (by its name), the first address that cannot be listened on and
 * its errno `code`, with one line saying so; `undefined` for any other error.
 */
export async function describeListenFailure (err: unknown, addrs: string[]): Promise<{ line: string, code?: string, addr?: string } | undefined> {
  if ((err as Error)?.name !== 'UnsupportedListenAddressesError') return undefined
  for (const addr of addrs) {
    const m = TCP.exec(addr)
    if (m === null) continue
    const code = await tryListen(m[2], Number(m[3]))
    if (code !== undefined) return { line: `cannot listen on ${addr}: ${WHY[code] ?? code}`, code, addr }
  }
  return { line: `cannot listen on ${addrs.join(', ')}` }
}

/**
 * The swarm's listener (`dstore local --listen`), for listenOrFallBack: libp2p's failure traced
 * to its address and errno; the free-port fallback is /tcp/0 on the same host (one address: the
 * default).
 */
export const SWARM_LISTENER: ListenerKind<string[]> = {
  name: 'the swarm',
  port: 'swarm port',
  why: WHY,
  failure: async (err, addrs) => {
    const found = await describeListenFailure(err, addrs)
    if (found === undefined) return undefined
    return { code: found.code ?? 'EUNKNOWN', where: found.addr ?? addrs.join(', ') }
  },
  free: (addrs) => ({
    listen: addrs.map(a => a.replace(/\/tcp\/\d+$/, '/tcp/0')),
    port: Number(TCP.exec(addrs[0])?.[3] ?? 0)
  })
}

/** The errno code of listening on host:port, or undefined if that works (now). */
async function tryListen (host: string, port: number): Promise<string | undefined> {
  return await new Promise(resolve => {
    const server = createServer()
    server.once('error', (e: NodeJS.ErrnoException) => { resolve(e.code ?? 'EUNKNOWN') })
    server.listen({ host, port, exclusive: true }, () => { server.close(() => { resolve(undefined) }) })
  })
}
