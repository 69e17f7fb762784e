/**
 * A network-namespace harness for the swarm bench (`bench/swarm.ts`): one namespace per peer,
 * each joined by a veth pair to a bridge that lives in a namespace of its own, every link capped
 * with `tc` in both directions, so the network (not the cores) is the bottleneck.
 *
 *   dsb-br   bridge `br0`, one port `v-<host>` per peer (each port's egress = that peer's download cap)
 *   dsb-<h>  `lo` up, `eth0` (198.18.x.y/15; its egress = that peer's upload cap)
 *
 * Invariants:
 * - Nothing in the root namespace is touched: every veth is created inside a peer's namespace
 *   and its other end is moved straight into the bridge's.
 * - Addresses come only from 198.18.0.0/15 (RFC 2544, the benchmarking range).
 * - Every namespace is named with the prefix, and every one with it is deleted: at the start
 *   (stale ones left by a run that was killed with SIGKILL), on close, and on SIGINT, SIGTERM,
 *   SIGHUP, an uncaught error or any exit. Before a namespace is deleted, every process still
 *   in it is killed (a namespace stays alive while a process is inside it).
 * - Every wait is bounded in count and in time.
 *
 * Needs root, `ip` (iproute2) and `tc`. `netnsUnavailable()` says in one line why it cannot run.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readdirSync } from 'node:fs'

/** The prefix of every namespace this harness creates. */
export const NETNS_PREFIX = 'dsb-'
/** The bridge's namespace. */
export const BRIDGE_NS = `${NETNS_PREFIX}br`
/** Every peer's interface, inside its namespace. */
export const PEER_DEV = 'eth0'
/** The prefix length: 198.18.0.0/15. */
const PREFIX_LEN = 15
/** Each `ip`/`tc` command gets this long. */
const CMD_TIMEOUT_MS = 10_000
/** At most this many hosts (so an address is always inside 198.18.0.0/15, and names fit IFNAMSIZ). */
export const MAX_HOSTS = 500

/** One peer's namespace. */
export interface NetnsHost {
  /** Short name (`g`, `l0`, …): the namespace is `dsb-<name>`. */
  name: string
  ns: string
  /** Its IPv4 address (in 198.18.0.0/15). */
  addr: string
  /** The bridge's end of its veth pair (in `dsb-br`). */
  bridgePort: string
}

export interface NetnsOptions {
  /** Link rate in Mbit/s (10^6 bits per second), each direction of every link. */
  rateMbit: number
}

function has (cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: CMD_TIMEOUT_MS })
    return true
  } catch {
    return false
  }
}

/** Why the harness cannot run here (one line), or undefined when it can. */
export function netnsUnavailable (): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'it needs root (network namespaces and tc): run it as root, e.g. sudo npm run bench -- --only swarm'
  const missing = [['ip', '-V'], ['tc', '-V'], ['curl', '--version']].filter(([cmd, flag]) => !has(cmd, [flag])).map(([cmd]) => cmd)
  if (missing.length > 0) return `it needs ${missing.join(', ')} on the PATH (iproute2 for ip and tc)`
  return undefined
}

function sh (cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: CMD_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Namespaces whose name starts with the prefix (read from /run/netns, where `ip netns` keeps them). */
export function listNetns (prefix = NETNS_PREFIX): string[] {
  try {
    return readdirSync('/run/netns').filter(n => n.startsWith(prefix))
  } catch {
    return []
  }
}

/**
 * Kills every process in each namespace with the prefix, then deletes the namespace
 * (synchronous, so it can run in an exit handler). Returns how many were deleted.
 */
export function deleteNetns (prefix = NETNS_PREFIX): number {
  let deleted = 0
  // Bounded: each namespace is tried once per pass, three passes at most.
  for (let pass = 0; pass < 3; pass++) {
    const left = listNetns(prefix)
    if (left.length === 0) break
    for (const ns of left) {
      try {
        const pids = sh('ip', ['netns', 'pids', ns]).split('\n').map(Number).filter(p => p > 0)
        for (const pid of pids) {
          try { process.kill(pid, 'SIGKILL') } catch {}
        }
      } catch {}
      try {
        sh('ip', ['netns', 'del', ns])
        deleted++
      } catch {}
    }
  }
  return deleted
}

/** Host k's address: 198.18.0.1 for the first, then 198.18.1.1, 198.18.1.2, … (never .0 or .255). */
function address (k: number): string {
  if (k === 0) return '198.18.0.1'
  const i = k - 1
  return `198.18.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`
}

/**
 * tbf on one interface: `rate`, a burst of 10 ms at that rate (at least 16 KiB, so a full-size
 * frame always fits; GSO frames larger than the burst are split by tbf itself) and at most
 * 50 ms of queue.
 */
function shape (ns: string, dev: string, rateMbit: number): void {
  const burst = Math.max(16 * 1024, Math.ceil(rateMbit * 1e6 / 8 / 100))
  sh('tc', ['-n', ns, 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', String(burst), 'latency', '50ms'])
}

/**
 * The namespaces of one bench run. `create` builds them, `close` removes them (and every
 * process in them); the guards installed by `create` do the same on a signal or an exit.
 */
export class Netns {
  readonly rateMbit: number
  readonly hosts = new Map<string, NetnsHost>()
  private readonly children = new Set<ChildProcess>()
  private readonly closers: Array<() => void> = []
  private guards: Array<[string, (...args: any[]) => void]> = []
  private closed = false

  private constructor (opts: NetnsOptions) {
    this.rateMbit = opts.rateMbit
  }

  /**
   * Deletes stale namespaces with the prefix, then creates the bridge and one namespace per
   * name, in order (the first name gets 198.18.0.1). Guards are installed first, so even a
   * failure half way leaves nothing behind.
   */
  static create (names: string[], opts: NetnsOptions): Netns {
    if (names.length > MAX_HOSTS) throw new Error(`at most ${MAX_HOSTS} hosts`)
    if (!(opts.rateMbit > 0)) throw new Error(`bad link rate ${opts.rateMbit} Mbit/s`)
    const stale = deleteNetns()
    if (stale > 0) console.log(`[netns] deleted ${stale} stale namespace(s) named ${NETNS_PREFIX}* from an earlier run`)
    const net = new Netns(opts)
    net.installGuards()
    try {
      sh('ip', ['netns', 'add', BRIDGE_NS])
      sh('ip', ['-n', BRIDGE_NS, 'link', 'set', 'lo', 'up'])
      sh('ip', ['-n', BRIDGE_NS, 'link', 'add', 'br0', 'type', 'bridge'])
      sh('ip', ['-n', BRIDGE_NS, 'link', 'set', 'br0', 'up'])
      names.forEach((name, k) => { net.addHost(name, k) })
    } catch (err) {
      net.close()
      throw err
    }
    return net
  }

  private addHost (name: string, k: number): void {
    if (!/^[a-z0-9]{1,8}$/.test(name)) throw new Error(`bad host name ${name}`)
    const host: NetnsHost = { name, ns: `${NETNS_PREFIX}${name}`, addr: address(k), bridgePort: `v-${name}` }
    sh('ip', ['netns', 'add', host.ns])
    sh('ip', ['-n', host.ns, 'link', 'set', 'lo', 'up'])
    // Created inside the peer's namespace, its other end moved straight to the bridge's: the
    // root namespace never sees either end.
    sh('ip', ['-n', host.ns, 'link', 'add', PEER_DEV, 'type', 'veth', 'peer', 'name', host.bridgePort, 'netns', BRIDGE_NS])
    sh('ip', ['-n', BRIDGE_NS, 'link', 'set', host.bridgePort, 'master', 'br0'])
    sh('ip', ['-n', BRIDGE_NS, 'link', 'set', host.bridgePort, 'up'])
    sh('ip', ['-n', host.ns, 'addr', 'add', `${host.addr}/${PREFIX_LEN}`, 'dev', PEER_DEV])
    sh('ip', ['-n', host.ns, 'link', 'set', PEER_DEV, 'up'])
    shape(host.ns, PEER_DEV, this.rateMbit) // the peer's upload
    shape(BRIDGE_NS, host.bridgePort, this.rateMbit) // the peer's download
    this.hosts.set(name, host)
  }

  host (name: string): NetnsHost {
    const h = this.hosts.get(name)
    if (h === undefined) throw new Error(`no host ${name}`)
    return h
  }

  /**
   * Spawns `cmd args` inside a host's namespace (`ip netns exec`, which execs the command, so
   * the child's pid is the command's own). Tracked: `close` kills it if it is still running.
   */
  spawn (name: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    if (this.closed) throw new Error('the namespaces are closed')
    const child = spawn('ip', ['netns', 'exec', this.host(name).ns, cmd, ...args], opts)
    this.children.add(child)
    child.once('exit', () => { this.children.delete(child) })
    return child
  }

  /** Runs a command in a host's namespace to completion; its stdout (rejects on a non-zero exit or after `timeoutMs`). */
  async exec (name: string, cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
    const child = this.spawn(name, cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s })
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s })
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`${cmd} in ${name}: no end within ${timeoutMs} ms`))
      }, timeoutMs)
      child.once('error', e => { clearTimeout(timer); reject(e) })
      child.once('close', code => {
        clearTimeout(timer)
        if (code === 0) resolve(out)
        else reject(new Error(`${cmd} in ${name} exited ${String(code)}: ${err.trim().split('\n').slice(-1)[0] ?? ''}`))
      })
    })
  }

  /** Bytes a host has sent on its veth (`/sys/class/net/eth0/statistics/tx_bytes` in its namespace). */
  async txBytes (name: string): Promise<number> {
    return Number((await this.exec(name, 'cat', [`/sys/class/net/${PEER_DEV}/statistics/tx_bytes`], 5000)).trim())
  }

  /**
   * Runs `fn` (synchronous) when the namespaces are closed, after the processes are killed:
   * for what must go even on a signal, such as temp folders.
   */
  atClose (fn: () => void): void {
    this.closers.push(fn)
  }

  /** Kills every process started here and deletes every namespace with the prefix (synchronous; idempotent). */
  close (): void {
    if (this.closed) return
    this.closed = true
    for (const child of this.children) {
      try { child.kill('SIGKILL') } catch {}
    }
    deleteNetns()
    for (const fn of this.closers) {
      try { fn() } catch {}
    }
    for (const [event, fn] of this.guards) process.off(event, fn)
    this.guards = []
  }

  private installGuards (): void {
    const onSignal = (signal: NodeJS.Signals): void => {
      console.error(`\n[netns] ${signal}: deleting the ${NETNS_PREFIX}* namespaces`)
      this.close()
      process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 129)
    }
    const onError = (err: unknown): void => {
      console.error('[netns] uncaught error, deleting the namespaces:', err)
      this.close()
      process.exit(1)
    }
    const onExit = (): void => { this.close() }
    this.guards = [['SIGINT', onSignal], ['SIGTERM', onSignal], ['SIGHUP', onSignal], ['uncaughtException', onError], ['unhandledRejection', onError], ['exit', onExit]]
    for (const [event, fn] of this.guards) process.on(event, fn)
  }
}
