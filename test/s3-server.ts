/**
 * A real S3 server for tests and benches: OpenStack Swift (Debian's `python3-swift`) with its
 * `s3api` and `tempauth` middleware, and Debian's `memcached` (tempauth keeps tokens there).
 *
 * Five foreground processes on free ports of 127.0.0.1: memcached and Swift's account,
 * container, object and proxy servers, with 1-replica rings and every config file in one temp
 * folder. Swift runs under `/usr/bin/python3` (the Debian interpreter that has Swift; a pyenv
 * `python3` on PATH does not), or `DSTORE_SWIFT_PYTHON`. test/swift/run.py makes each process
 * die with this one (PR_SET_PDEATHSIG), so a crashed test leaves nothing running.
 *
 * Nothing is faked: the S3 the tests see is Swift's own s3api, with its quirks (see
 * docs/STORAGE.md, "Running against S3").
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createWriteStream, existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3'
import type { S3Config } from '../src/core/store/s3/config.js'

// The SDK warns on Node 20 that its releases after January 2027 need Node 22 (dstore pins one).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

const HERE = dirname(fileURLToPath(import.meta.url))
/** test/swift/run.py in the source tree (tests run from dist/test). */
const RUN_PY = join(HERE, '..', '..', 'test', 'swift', 'run.py')
const MEMCACHED = '/usr/bin/memcached'
const DEVICE = 'd1'

/** A running Swift + s3api server. */
export interface S3Server {
  /** `http://127.0.0.1:PORT`, the S3 endpoint (path-style only). */
  readonly endpoint: string
  /** Always `us-east-1` (s3api's default location). */
  readonly region: string
  /** tempauth's `account:user` form: `test:tester`. */
  readonly accessKeyId: string
  readonly secretAccessKey: string
  /** The bucket created at start, when `startS3Server({ bucket })` asked for one. */
  readonly bucket?: string
  /** The temp folder holding config, rings, data and `*.log` of each process. */
  readonly dir: string
  /** An `S3Config` for `createS3Client` / `createS3Store` on this server (path-style, its credentials). */
  config (bucket?: string, prefix?: string): S3Config
  /** The AWS environment variables that point a child process (the CLI) at this server. */
  env (): Record<string, string>
  /** An SDK client for this server (checksums only when required, as Swift needs), for test set-up and inspection. */
  client (): S3Client
  /** Creates a bucket (unique name when none is given) and returns its name. */
  createBucket (name?: string): Promise<string>
  /**
   * SIGKILLs the proxy server (the S3 endpoint: clients see connections refused or cut), or
   * with `'all'` every process; the data stays. Killing only the proxy keeps `restart()` to one
   * process's start-up (about 1 s on an idle machine).
   */
  kill (what?: 'proxy' | 'all'): Promise<void>
  /** SIGKILLs the proxy if it runs, starts whatever is not running on the same ports and data, and waits until S3 answers. */
  restart (): Promise<void>
  /** Stops every process and removes the temp folder. Safe to call twice. */
  stop (): Promise<void>
}

export interface S3ServerOptions {
  /** Create this bucket once the server is up. */
  bucket?: string
  /** How long to wait for the server to answer, in ms. @default 60000 */
  startTimeout?: number
  /**
   * Object writes (PUT, DELETE, POST, COPY) per second per bucket; beyond it Swift's ratelimit
   * middleware refuses at once and s3api answers 503 SlowDown: real throttling, for retry tests.
   * Swift limits only buckets that hold at least one object, by the object count in its cached
   * bucket info: put one object, then list the bucket (which refreshes that cache).
   * @default no limit
   */
  ratelimit?: number
  /**
   * Swift's `max_file_size`: the largest single object (PutObject, CopyObject, one part), so
   * that the paths S3 takes above 5 GiB can be tested with small values. @default 5 GiB + 2 (Swift's)
   */
  maxObjectSize?: number
}

/** The processes of every server not stopped yet, SIGKILLed if this process exits first (one listener for all). */
const everyServer = new Set<Map<string, ChildProcess>>()
process.on('exit', () => {
  for (const children of everyServer) for (const child of children.values()) child.kill('SIGKILL')
})

/** The interpreter that has Swift. */
export function swiftPython (): string {
  return process.env.DSTORE_SWIFT_PYTHON ?? '/usr/bin/python3'
}

/** Why the server cannot start on this machine, or undefined when it can. */
export function s3ServerUnavailable (): string | undefined {
  if (!existsSync(MEMCACHED)) return `${MEMCACHED} is missing (apt-get install memcached)`
  const py = spawnSync(swiftPython(), ['-c', 'import swift.common.middleware.s3api'], { encoding: 'utf8' })
  if (py.status !== 0) return `${swiftPython()} cannot import swift (apt-get install --no-install-recommends python3-swift): ${(py.stderr ?? py.error?.message ?? '').trim().split('\n').pop() ?? ''}`
  return undefined
}

async function freePorts (n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, async () => await new Promise<import('node:net').Server>((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { resolve(s) })
  })))
  const ports = servers.map(s => (s.address() as import('node:net').AddressInfo).port)
  await Promise.all(servers.map(async s => { await new Promise(resolve => s.close(resolve)) }))
  return ports
}

async function portOpen (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const sock = connect(port, '127.0.0.1')
    sock.once('connect', () => { sock.destroy(); resolve(true) })
    sock.once('error', () => { resolve(false) })
  })
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

interface Ports { memcached: number, account: number, container: number, object: number, proxy: number }

function backendConf (dir: string, port: number, app: 'account' | 'container' | 'object'): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
devices = ${join(dir, 'data')}
mount_check = false
swift_dir = ${dir}
log_level = WARNING
log_name = ${app}-server

[pipeline:main]
pipeline = ${app}-server

[app:${app}-server]
use = egg:swift#${app}
`
}

function proxyConf (dir: string, ports: Ports, ratelimit?: number): string {
  // s3api before the auth middleware; slo after s3api (multipart uploads are SLOs); copy for
  // CopyObject; ratelimit after tempauth, where paths are Swift's /v1/AUTH_test/bucket/key.
  const limit = ratelimit != null
    ? `\n[filter:ratelimit]\nuse = egg:swift#ratelimit\ncontainer_ratelimit_0 = ${ratelimit}\n# Refuse (498, which s3api answers as 503 SlowDown) instead of sleeping.\nmax_sleep_time_seconds = 0.02\n# No burst allowance after an idle spell.\nrate_buffer_seconds = 0\n`
    : ''
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${ports.proxy}
workers = 0
swift_dir = ${dir}
log_level = WARNING
log_name = proxy-server

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth ${ratelimit != null ? 'ratelimit ' : ''}copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${ports.memcached}

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
${limit}`
}

function swiftConf (maxObjectSize?: number): string {
  return `[swift-hash]
swift_hash_path_suffix = dstore-test
swift_hash_path_prefix = dstore-test

[storage-policy:0]
name = Policy-0
default = yes
${maxObjectSize != null ? `\n[swift-constraints]\nmax_file_size = ${maxObjectSize}\n` : ''}`
}

/**
 * Starts memcached and Swift (account, container, object, proxy with s3api + tempauth) in a
 * fresh temp folder, and resolves once an S3 ListBuckets succeeds (typically 2–6 s). Rejects,
 * after cleaning up, when it does not within `startTimeout`.
 */
export async function startS3Server (options: S3ServerOptions = {}): Promise<S3Server> {
  const why = s3ServerUnavailable()
  if (why != null) throw new Error(`cannot start the test S3 server: ${why}`)
  const startTimeout = options.startTimeout ?? 60_000
  const dir = await mkdtemp(join(tmpdir(), 'dstore-s3-'))
  const [memcached, account, container, object, proxy] = await freePorts(5)
  const ports: Ports = { memcached, account, container, object, proxy }
  const endpoint = `http://127.0.0.1:${ports.proxy}`
  const credentials = { accessKeyId: 'test:tester', secretAccessKey: 'testing' }
  const region = 'us-east-1'
  const children = new Map<string, ChildProcess>()
  let stopped = false
  let clientInstance: S3Client | undefined

  await mkdir(join(dir, 'data', DEVICE), { recursive: true })
  await writeFile(join(dir, 'swift.conf'), swiftConf(options.maxObjectSize))
  for (const app of ['account', 'container', 'object'] as const) {
    await writeFile(join(dir, `${app}-server.conf`), backendConf(dir, ports[app], app))
  }
  await writeFile(join(dir, 'proxy-server.conf'), proxyConf(dir, ports, options.ratelimit))

  const rings = spawnSync(swiftPython(), [RUN_PY, String(process.pid), 'rings', dir, String(account), String(container), String(object), DEVICE], { encoding: 'utf8' })
  if (rings.status !== 0) {
    await rm(dir, { recursive: true, force: true })
    throw new Error(`cannot build the Swift rings: ${rings.stderr}`)
  }

  const newClient = (): S3Client => new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1
  })

  function launch (name: string, args: string[]): void {
    const log = createWriteStream(join(dir, `${name}.log`), { flags: 'a' })
    // EVENTLET_NO_GREENDNS: every address is an IP, and eventlet's DNS module costs ~0.2 s of start-up.
    const env = { ...process.env, EVENTLET_NO_GREENDNS: 'yes' }
    const child = spawn(swiftPython(), [RUN_PY, String(process.pid), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
    child.stdout?.pipe(log, { end: false })
    child.stderr?.pipe(log, { end: false })
    child.once('exit', () => { setTimeout(() => { log.end() }, 50) })
    // A server a test forgot to stop must not keep the test process alive: its exit kills it.
    child.unref()
    for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.()
    children.set(name, child)
  }

  function logTail (): string {
    return [...children.keys()].map(name => {
      try {
        const text = readFileSync(join(dir, `${name}.log`), 'utf8').trim().split('\n').slice(-5).join('\n')
        return text === '' ? '' : `--- ${name}.log\n${text}`
      } catch { return '' }
    }).filter(s => s !== '').join('\n')
  }

  const alive = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null

  /** SIGKILLs the named processes (all when none are named) and waits for their exits. */
  async function killProcesses (names: string[] = [...children.keys()]): Promise<void> {
    await Promise.all(names.map(async name => {
      const child = children.get(name)
      children.delete(name)
      if (child == null || !alive(child)) return
      await new Promise<void>(resolve => {
        child.once('exit', () => { resolve() })
        child.kill('SIGKILL')
      })
    }))
  }

  async function waitReady (): Promise<void> {
    const until = Date.now() + startTimeout
    const probe = newClient()
    try {
      for (;;) {
        for (const [name, child] of children) {
          if (!alive(child)) throw new Error(`the test S3 server's ${name} exited (${child.exitCode ?? child.signalCode})\n${logTail()}`)
        }
        const open = await Promise.all([ports.account, ports.container, ports.object, ports.proxy].map(portOpen))
        if (open.every(Boolean)) {
          try {
            await probe.send(new ListBucketsCommand({}))
            return
          } catch { /* not ready yet */ }
        }
        if (Date.now() > until) throw new Error(`the test S3 server did not answer within ${startTimeout} ms\n${logTail()}`)
        await sleep(50)
      }
    } finally { probe.destroy() }
  }

  /** Starts every process that is not running, and waits until S3 answers. */
  async function start (): Promise<void> {
    if (!children.has('memcached')) {
      launch('memcached', ['exec', MEMCACHED, '-l', '127.0.0.1', '-p', String(ports.memcached), '-U', '0', '-m', '64', ...(process.getuid?.() === 0 ? ['-u', 'root'] : [])])
    }
    for (const app of ['account', 'container', 'object', 'proxy'] as const) {
      if (!children.has(`${app}-server`)) launch(`${app}-server`, ['server', dir, join(dir, `${app}-server.conf`), `${app}-server`])
    }
    await waitReady()
  }

  everyServer.add(children)

  const server: S3Server = {
    endpoint,
    region,
    ...credentials,
    dir,
    config (bucket?: string, prefix?: string) {
      const b = bucket ?? server.bucket
      if (b == null) throw new Error('config(): no bucket (pass one, or start the server with { bucket })')
      return { bucket: b, ...(prefix != null ? { prefix } : {}), endpoint, region, forcePathStyle: true, credentials: { ...credentials } }
    },
    env () {
      return { AWS_ENDPOINT_URL: endpoint, AWS_REGION: region, AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey }
    },
    client () {
      clientInstance ??= newClient()
      return clientInstance
    },
    async createBucket (name?: string) {
      const bucket = name ?? `dstore-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
      await server.client().send(new CreateBucketCommand({ Bucket: bucket }))
      return bucket
    },
    async kill (what = 'proxy') { await killProcesses(what === 'all' ? undefined : ['proxy-server']) },
    async restart () {
      await killProcesses(['proxy-server'])
      await start()
    },
    async stop () {
      if (stopped) return
      stopped = true
      clientInstance?.destroy()
      await killProcesses()
      everyServer.delete(children)
      await rm(dir, { recursive: true, force: true })
    }
  }

  try {
    await start()
    if (options.bucket != null) (server as { bucket?: string }).bucket = await server.createBucket(options.bucket)
  } catch (err) {
    await server.stop()
    throw err
  }
  return server
}
