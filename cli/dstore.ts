#!/usr/bin/env node
/**
 * The `dstore` command. It imports only the public API (`src/index.ts`, which loads the
 * runtime shim before libp2p), so the CLI proves the API is enough.
 */
import { keepServingOnUnhandled } from './unhandled.js'
import {
  createGlobal, createLocal, parseCID, repoPeerId, DEFAULT_CONNECTION_LIMITS, READERS_FILE, WRITERS_FILE,
  startHttpServer, globalBackend, createMetrics, createMetricsRegistry, globalMetricsSource,
  type AccessLists, type CID, type GlobalPeer, type GlobalStore, type LocalPeer, type HttpServer
} from '../src/index.js'
import { stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { basename, join } from 'node:path'
import { Command, CommanderError, Option, InvalidArgumentError } from 'commander'
import { makeRepo, namedGlobal, resolveGlobal, resolveRepo } from './config.js'
import { isStdin, openInput } from './input.js'
import { checkListen, checkLocalListen, describeListenFailure } from './listen.js'
import { parseHttpListen, readTokenFile, removeUrlFile, startDaemonHttp, type HttpListen } from './http-listen.js'
import { UsageError, describeError, errorJson, formatBytes, jsonErrors, progressBar, reportError } from './output.js'
import { DEFAULT_LOCAL_HTTP, DEFAULT_LOCAL_LISTEN, applyServingGc, findDaemon, runLocalDaemon, type LocalApi } from './daemon.js'
import { runRepl } from './repl.js'
import { interruptedStatus, onStopSignal, reportInterrupted } from './signals.js'
import { planTarget, writeOut, type Target } from './target.js'
import { BLAKE3_BACKEND, createFsStore, StorageError, type FsBlobStore } from '../src/index.js'
import { storeChoice, storeOptions, type StoreFlags } from './store-flags.js'
import { openS3Store, verifyS3 } from './s3-store.js'
import { parseRate } from './rate.js'

/** Above this a put goes on a blob stream (the protocol's inline limit), and a file is hashed first. */
const INLINE_PUT_MAX = 256 * 1024

const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version
const DEFAULT_LISTEN = '/ip4/127.0.0.1/tcp/4001'
const DEFAULT_GLOBAL_HTTP = '127.0.0.1:5080'

interface Common { repo?: string, global?: string[], json?: boolean, connectTimeout: number, progress: boolean, daemon?: boolean }

function nonNegativeInt (value: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number of 0 or more')
  return n
}

function positiveInt (value: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of 1 or more')
  return n
}

/** commander's parser for an on|off flag. */
function onOff (value: string): boolean {
  const v = value.trim().toLowerCase()
  if (v === 'on') return true
  if (v === 'off') return false
  throw new InvalidArgumentError('give on or off')
}

/** Accumulates a repeatable option's values. */
function collectList (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

/** One line saying who may write and read. */
function describeAccess (lists: AccessLists): string {
  const who = (set: ReadonlySet<string> | undefined, open: string): string =>
    set === undefined ? open : set.size === 0 ? 'nobody' : `${set.size} PeerId${set.size === 1 ? '' : 's'}`
  return `writers: ${who(lists.writers, 'anyone (loopback only)')}; readers: ${who(lists.readers, 'anyone')}`
}

/** Options every client command takes. */
function clientOptions (cmd: Command): Command {
  return cmd
    .option('--repo <dir>', 'repository folder ($DSTORE_REPO, default ~/.dstore); its global.addr names the Global')
    .option('--global <multiaddr>', 'Global to talk to (repeatable: Globals with different /p2p/ ids share the requests; $DSTORE_GLOBAL, default: <repo>/global.addr)', collectList)
    .option('--json', 'machine-readable output (one JSON document)')
    .addOption(new Option('--connect-timeout <ms>', 'how long to wait for Global').default(5000).argParser(nonNegativeInt))
    .option('--no-progress', 'no progress bar (it only shows when stderr is a terminal)')
    .option('--no-daemon', 'do not use the Local daemon (<repo>/local.http): run a short-lived Local instead')
}

/** A Local for the Global that `opts` names (not connected yet); a malformed address is a usage error. */
async function newLocal (opts: Common, extra: { cacheSize?: number, swarm?: boolean } = {}): Promise<{ local: LocalPeer, addrs: string[] }> {
  const repo = resolveRepo(opts.repo)
  const { addrs } = await resolveGlobal(opts.global, repo)
  const create = async (withRepo: boolean): Promise<LocalPeer> =>
    await createLocal({ global: addrs, ...(withRepo ? { repo } : {}), connectTimeout: opts.connectTimeout, ...extra })
  try {
    // The identity in <repo>/local.key: the PeerId a Global's allow-list names (`dstore id` prints it).
    return { local: await create(true), addrs }
  } catch (err) {
    if (!(err instanceof StorageError)) throw new UsageError(`bad Global address ${addrs.join(', ')}: ${(err as Error).message}`, 2)
  }
  // The repository cannot hold an identity (read-only, or no home folder): a temporary one still
  // reads, and writes to any Global without a writer list. `dstore id` reports why there is none.
  try {
    return { local: await create(false), addrs }
  } catch (err) {
    throw new UsageError(`bad Global address ${addrs.join(', ')}: ${(err as Error).message}`, 2)
  }
}

/**
 * Runs `fn` with the Local daemon named by `<repo>/local.http` when it answers (so reads share
 * its cache), else with a short-lived Local connected to Global (`--no-daemon` forces that,
 * and so does naming a Global with --global: the daemon talks to its own). The one switch
 * point: every client command goes through here. Ctrl+C (or SIGTERM) aborts it cleanly.
 */
async function withLocal<T> (opts: Common, fn: (local: LocalApi, signal: AbortSignal) => Promise<T>, use: { write?: boolean } = {}): Promise<T> {
  // Caught from the start, so a signal while the Local is being created also exits 130/143.
  const controller = new AbortController()
  const release = onStopSignal(() => { controller.abort() })
  let local: LocalApi | undefined
  try {
    // A Global named by --global or DSTORE_GLOBAL is used through the daemon only if the daemon talks to it.
    const daemon = opts.daemon !== false
      ? await findDaemon(resolveRepo(opts.repo), controller.signal, { ...use, global: namedGlobal(opts.global)?.addrs })
      : undefined
    if (daemon !== undefined) {
      local = daemon
    } else {
      // No cache: it would die with this command, and a streamed put keeps up to a quarter of
      // the cache's budget for it (64 MiB of the default, a third of a CLI put's peak). No swarm:
      // it serves nobody, and with no cache to fill it would refuse what peers offer anyway (one
      // round trip more per get of a value peers hold).
      const peer = (await newLocal(opts, { cacheSize: 0, swarm: false })).local
      local = peer
      await peer.ready({ signal: controller.signal })
    }
    return await fn(local, controller.signal)
  } finally {
    release()
    await local?.stop()
  }
}

function print (opts: Common, json: unknown, text: string): void {
  process.stdout.write(opts.json === true ? JSON.stringify(json) + '\n' : text + '\n')
}

const program = new Command()
program
  .name('dstore')
  .description('A content-addressed, two-layer blob store: keys are BLAKE3 CIDs, a Global pins values on disk, Locals cache them.')
  .version(VERSION, '-V, --version')
  .exitOverride()
  .configureOutput({
    // commander's own errors become our one-line format; help and version go to stdout as usual.
    outputError: (str, write) => {
      const message = `${str.replace(/^error: /, '').trim()} (see dstore --help)`
      write(jsonErrors.enabled ? JSON.stringify({ error: { name: 'UsageError', code: 'ERR_USAGE', message } }) + '\n' : `dstore: ${message}\n`)
    }
  })

const globalStore = storeOptions()
program.command('global')
  .description('run the Global daemon: pins values on disk (or in an S3 bucket, --store) and serves them to Locals')
  .option('--repo <dir>', 'repository folder ($DSTORE_REPO, default ~/.dstore)')
  .addOption(new Option('--listen <multiaddr...>', `TCP addresses to listen on, /ip4|ip6/HOST/tcp/PORT (default ${DEFAULT_LISTEN}, or a free port if it is taken)`).argParser(checkListen))
  .addOption(new Option('--max-blob-size <bytes>', 'refuse values larger than this').argParser(nonNegativeInt))
  .addOption(new Option('--max-egress <rate>', 'cap the value bytes Global sends, over all Locals, per second: 5000000 (bytes/s), 5MB, 5MiB, 40Mbit (default: no cap; at least 64 KiB/s)').argParser(parseRate))
  .addOption(new Option('--encryption <kinds...>', 'connection encryption, in order of preference').choices(['tls', 'noise']))
  .option('--allow-writer <peerId>', `a PeerId that may put and delete (repeatable; added to <repo>/${WRITERS_FILE})`, collectList)
  .option('--allow-reader <peerId>', `a PeerId that may read (repeatable; added to <repo>/${READERS_FILE}); with none, anyone may read`, collectList)
  .option('--insecure-open-writes', 'accept writes from anyone on a non-loopback address with no writer list')
  .option('--peer-global <multiaddr>', 'another Global serving the same store, with its /p2p/ id (repeatable; list each Global on every other): deletes are passed on to it', collectList)
  .addOption(new Option('--max-connections-per-peer <n>', 'connections one PeerId may have open at once (default 32; clients sharing a repository share its PeerId)').argParser(positiveInt))
  .addOption(new Option('--handshake-timeout <ms>', `time an inbound connection gets to finish its handshake (encryption, muxer) before it is closed (default ${DEFAULT_CONNECTION_LIMITS.handshakeTimeout})`).argParser(positiveInt))
  .addOption(new Option('--max-pending-per-ip <n>', `connections still in their handshake from one IPv4 address or IPv6 /64; a new one closes that source's oldest (default ${DEFAULT_CONNECTION_LIMITS.maxPendingPerIp})`).argParser(positiveInt))
  .addOption(new Option('--max-pending <n>', `connections still in their handshake from all sources; a new one closes the oldest (default ${DEFAULT_CONNECTION_LIMITS.maxPending})`).argParser(positiveInt))
  .addOption(new Option('--http <host:port|off>', `HTTP gateway address (default ${DEFAULT_GLOBAL_HTTP}, or a free port if it is taken); off for none`).argParser(parseHttpListen))
  .option('--http-token <file>', 'a file holding the bearer token HTTP writes must carry (needed for writes on a non-loopback --http)')
  .option('--json', 'print the addresses as JSON')
  .addOption(globalStore.store).addOption(globalStore.endpoint).addOption(globalStore.region).addOption(globalStore.pathStyle)
  .addHelpText('after', `
Store: without --store, values live in <repo>/store. With --store s3://BUCKET[/PREFIX] they live
in the bucket (the repository keeps only the identity and access lists), and any number of
Globals may serve one bucket. Credentials come from the AWS environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws); see README "Global on S3".

HTTP: GET/HEAD /ipfs/{cid} (an IPFS trustless gateway for raw blocks), POST /ipfs, PUT and
DELETE /ipfs/{cid}, /status, /metrics; see docs/HTTP.md. Writes are open on a loopback
address; elsewhere only with --http-token (else the listener is read-only). The URL is
written to <repo>/global.http while Global runs.

Access: with no writer list, writes are open only while every listen address is loopback; a
Global listening elsewhere without one refuses to start. The files <repo>/${WRITERS_FILE} and
<repo>/${READERS_FILE} hold one PeerId per line (# comments); send SIGHUP to re-read them.
A client's PeerId is printed by \`dstore id\`.`)
  .action(async (opts: {
    repo?: string, listen?: string[], maxBlobSize?: number, maxEgress?: number, encryption?: Array<'tls' | 'noise'>, json?: boolean,
    allowWriter?: string[], allowReader?: string[], insecureOpenWrites?: boolean, maxConnectionsPerPeer?: number, peerGlobal?: string[],
    handshakeTimeout?: number, maxPendingPerIp?: number, maxPending?: number, http?: HttpListen, httpToken?: string
  } & StoreFlags) => {
    const repo = resolveRepo(opts.repo)
    // Checked before anything starts: a bad --store starts nothing.
    const choice = storeChoice(opts)
    // Read before anything starts: a bad token file starts nothing.
    const httpToken = opts.httpToken !== undefined ? await readTokenFile(opts.httpToken) : undefined
    // One registry for this Global: libp2p's series and dstore's (GET /metrics).
    let registry = createMetricsRegistry()
    const base = {
      repo,
      maxBlobSize: opts.maxBlobSize,
      maxEgress: opts.maxEgress,
      encryption: opts.encryption,
      allowWriters: opts.allowWriter,
      allowReaders: opts.allowReader,
      insecureOpenWrites: opts.insecureOpenWrites,
      peerGlobals: opts.peerGlobal,
      maxConnectionsPerPeer: opts.maxConnectionsPerPeer,
      // Unset flags stay unset: the API's defaults apply (and a --max-pending below the per-IP
      // default lowers that one too, as the API does).
      connectionLimits: { handshakeTimeout: opts.handshakeTimeout, maxPendingPerIp: opts.maxPendingPerIp, maxPending: opts.maxPending },
      log: (line: string) => { process.stderr.write(`dstore: ${line}\n`) }
    }
    keepServingOnUnhandled(base.log as (line: string) => void)
    // A Global is a serving process.
    const gcPolicy = applyServingGc()
    let global: GlobalPeer
    let note = ''
    // Surfaces a real errno (EROFS, EACCES) for a repository that cannot be created.
    await makeRepo(repo)
    const listen = opts.listen ?? [DEFAULT_LISTEN]
    // The S3 store, opened for each attempt (a HEAD of the bucket first, so a wrong bucket,
    // endpoint or key fails here, in one line, before anything listens): a Global that fails to
    // start closes the store it was given. Undefined: the fs store in <repo>/store.
    const store = async (): Promise<{ store?: GlobalStore }> => choice.kind === 's3' ? { store: await openS3Store(choice, base.log) } : {}
    try {
      global = await createGlobal({ ...base, ...await store(), listen, metricsRegistry: registry })
    } catch (err) {
      // libp2p says only that some address failed, with its own configuration advice and the
      // listen error's stack in the text: find out which address, and why, by its errno.
      const failure = await describeListenFailure(err, listen)
      if (failure === undefined) throw err
      if (opts.listen != null || failure.code !== 'EADDRINUSE') throw new UsageError(failure.line, 1)
      // A fresh registry: the failed start may have registered libp2p's series in the first.
      registry = createMetricsRegistry()
      global = await createGlobal({ ...base, ...await store(), listen: ['/ip4/127.0.0.1/tcp/0'], metricsRegistry: registry })
      note = `port 4001 is taken, so a free port was chosen`
    }
    const httpListen = opts.http ?? parseHttpListen(DEFAULT_GLOBAL_HTTP)
    let http: HttpServer | undefined
    const httpFile = join(repo, 'global.http')
    const notes = note === '' ? [] : [note]
    if (httpListen !== 'off') {
      // Once, outside the listen attempts: a second registration of a name in one registry throws.
      const metrics = createMetrics({ role: 'global', source: globalMetricsSource(global), registry, version: VERSION, peerId: global.peerId })
      try {
        const started = await startDaemonHttp(httpListen, opts.http !== undefined, httpFile, httpToken, async (host, port) => await startHttpServer({
          host,
          port,
          backend: globalBackend(global, { version: VERSION, url: () => http?.url }),
          metrics,
          token: httpToken,
          maxBlobSize: opts.maxBlobSize,
          log: base.log
        }))
        http = started.server
        notes.push(...started.notes)
      } catch (err) {
        await global.stop()
        throw err
      }
    }
    // Listen for the stop signals before announcing that we are up: a supervisor (or a test) may
    // send SIGTERM as soon as it reads the first line, and a signal with no listener yet kills the
    // process outright instead of stopping Global cleanly.
    const stopped = new Promise<void>(resolve => {
      const stop = (): void => { resolve() }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    process.on('SIGHUP', () => {
      global.reloadAccess().then(
        (lists) => { base.log(`access lists re-read: ${describeAccess(lists)}`) },
        (err: Error) => { base.log(`access lists NOT re-read, the previous ones stay in force: ${err.message}`) })
    })
    if (opts.json === true) {
      const { writers, readers } = global.accessLists
      const access = { writers: writers === undefined ? null : [...writers], readers: readers === undefined ? null : [...readers] }
      process.stdout.write(JSON.stringify({ peerId: global.peerId, multiaddrs: global.multiaddrs, repo, addrFile: global.addrFile, store: choice.kind === 's3' ? choice.url : join(repo, 'store'), access, http: http?.url ?? null, ...(http !== undefined ? { httpFile } : {}), maxEgress: opts.maxEgress ?? null, gcPolicy, blake3: BLAKE3_BACKEND }) + '\n')
    } else {
      for (const addr of global.multiaddrs) process.stdout.write(`Dstore server listening on ${addr}\n`)
      process.stdout.write(`PeerId: ${global.peerId}\nRepo: ${repo} (addresses in ${global.addrFile})\n`)
      if (choice.kind === 's3') process.stdout.write(`Store: ${choice.url}${choice.endpoint !== undefined ? ` at ${choice.endpoint}` : ''}\n`)
      process.stdout.write(`Access: ${describeAccess(global.accessLists)}\n`)
      if (opts.maxEgress !== undefined) process.stdout.write(`Egress: at most ${formatBytes(opts.maxEgress)}/s (${opts.maxEgress} bytes/s) to all Locals together\n`)
      if (http !== undefined) process.stdout.write(`HTTP: ${http.url} (URL in ${httpFile})\n`)
      for (const line of notes) process.stdout.write(`Note: ${line}\n`)
      process.stdout.write('Press Ctrl+C to stop.\n')
    }
    await stopped
    if (http !== undefined) {
      // The file first, as dstore local does: nobody is sent to a server that is closing.
      await removeUrlFile(httpFile)
      await http.close()
    }
    await global.stop()
    if (opts.json !== true) process.stdout.write('Global stopped.\n')
  })

program.command('local')
  .description('run the Local daemon: one long-lived Local (its cache shared by every client command on this host), served over HTTP')
  .option('--repo <dir>', 'repository folder ($DSTORE_REPO, default ~/.dstore); its global.addr names the Global')
  .option('--global <multiaddr>', 'Global to connect to (repeatable; $DSTORE_GLOBAL, default: <repo>/global.addr)', collectList)
  .addOption(new Option('--cache-size <bytes>', 'cache budget').default(256 * 1024 * 1024).argParser(nonNegativeInt))
  .addOption(new Option('--connect-timeout <ms>', 'how long a request waits for Global').default(10_000).argParser(positiveInt))
  .addOption(new Option('--max-blob-size <bytes>', 'refuse HTTP puts larger than this (413; Global may have a lower limit of its own)').argParser(nonNegativeInt))
  .addOption(new Option('--recheck-interval <ms>', 're-check every cached CID with a Global this often (0: never); bounds how long a deleted value can be served').default(60_000).argParser(nonNegativeInt))
  .addOption(new Option('--http <host:port|off>', `HTTP address (default ${DEFAULT_LOCAL_HTTP}, or a free port if it is taken); off for none`).argParser(parseHttpListen))
  .option('--http-token <file>', 'a file holding the bearer token HTTP writes must carry (needed for writes on a non-loopback --http)')
  .addOption(new Option('--listen <multiaddr...>', `TCP addresses other Locals fetch from this one on (the swarm), /ip4|ip6/HOST/tcp/PORT (default ${DEFAULT_LOCAL_LISTEN}, or a free port if it is taken); off to serve no other Local`).argParser(checkLocalListen))
  .addOption(new Option('--swarm <on|off>', 'fetch large values from other Locals too, and serve them what this one holds (default on); off: only Global, and no listener').argParser(onOff))
  .option('--json', 'print the daemon\'s details as JSON')
  .addHelpText('after', `
Swarm: a value of 4 MiB or more is fetched in pieces from the other Locals that Global names
as holding it, as well as from Global; every range is verified against the CID before it is
used or served on, and a peer whose bytes fail is dropped. Other Locals may fetch from this
one only while it is connected to Global, and only if Global lets them read. The addresses
they dial are in /status (swarm.addrs) and in the banner (Swarm:). See README "Swarm".

The URL is written to <repo>/local.http while the daemon runs (removed on a clean stop).
put, get, cat, stat, has, rm and ls with the same --repo go through it when it answers, so a
second get of a value is a cache hit; --no-daemon makes them run a Local of their own.
HTTP: the routes of docs/HTTP.md (GET/HEAD /ipfs/{cid}, POST /ipfs, PUT/DELETE /ipfs/{cid},
/status, /metrics, the status page at /).`)
  .action(async (opts: { repo?: string, global?: string[], cacheSize: number, connectTimeout: number, maxBlobSize?: number, recheckInterval: number, http?: HttpListen, httpToken?: string, listen?: string[], swarm?: boolean, json?: boolean }) => {
    await runLocalDaemon({ ...opts, version: VERSION })
  })

clientOptions(program.command('put'))
  .description('store files (or stdin, as -) on Global; prints one CID per input')
  .argument('[inputs...]', 'files to store (regular files, FIFOs, devices), or - for stdin (once)', ['-'])
  .addHelpText('after', `
A file that changes (size or modification time) while it is read is not stored: that input
fails with FileChangedError ("changed while it was read"). With --json, stdout is one array
with { input, cid, size } for each stored input and { input, error: { name, code, message } }
for each that failed.`)
  .action(async (inputs: string[], opts: Common) => {
    // Stdin can be read once: a second - would store the empty value under its CID.
    if (inputs.filter(isStdin).length > 1) throw new UsageError('stdin (-) can be put only once per command', 2)
    await withLocal(opts, async (local, signal) => {
      const results: Array<{ input: string, cid: string, size: number } | { input: string, error: ReturnType<typeof errorJson> }> = []
      let failed: unknown
      for (const input of inputs) {
        try {
          const { source, size, hash, close } = await openInput(input)
          const bar = progressBar(`put ${input === '-' ? 'stdin' : basename(input)}`, opts.progress && opts.json !== true)
          let cid: CID
          let bytes = 0
          try {
            // A file too large to go inline is hashed first, so that Global is asked whether it
            // has it and nothing is sent if so. A change made while it is hashed fails the hash
            // (Global's "I have it" would end the put without reading the file again), one made
            // later fails the read.
            const expected = hash !== undefined && size !== undefined && size > INLINE_PUT_MAX ? await hash() : undefined
            cid = await local.put(source, { signal, expected, onProgress: (e) => { bytes = e.bytes; bar.update(e.bytes, e.total ?? size) } })
          } finally {
            bar.stop()
            await close()
          }
          results.push({ input, cid: cid.toString(), size: size ?? bytes })
          if (opts.json !== true) process.stdout.write(cid.toString() + '\n')
        } catch (err) {
          if (signal.aborted) throw err
          if (opts.json === true) results.push({ input, error: errorJson(err) })
          else reportError(err)
          failed = err
        }
      }
      if (opts.json === true) process.stdout.write(JSON.stringify(results) + '\n')
      if (failed !== undefined) process.exitCode = 1
    }, { write: true })
  })

clientOptions(program.command('get'))
  .description('write a value, verified, to stdout or to a file (a regular file is written atomically)')
  .argument('<cid>', 'key of the value')
  .option('-o, --output <file>', 'write to this file instead of stdout (see below)')
  .addHelpText('after', `
-o FILE: a new file or an existing regular file is written atomically (into a temp file beside
it, renamed over it once every byte is verified; on failure the old file is untouched). A
symlink to a regular file is followed: the file it points to is replaced that way, the link
stays (not one another user owns in a sticky world-writable folder such as /tmp: refused). A FIFO or a character device (/dev/null, a terminal), and /dev/stdout, /dev/stderr,
/dev/fd/N, are written through in place, never replaced or renamed over. A directory, a block
device or a socket is refused (exit 1).
--json: with -o, prints { cid, size, output, path, mode } on stdout (path: the file written,
mode: atomic or through); without -o, or with -o /dev/stdout (/dev/fd/1), the value is stdout,
so that document goes to stderr.`)
  .action(async (cid: string, opts: Common & { output?: string }) => {
    // A bad key or output path fails at once, before connecting or fetching anything.
    const key = parseCID(cid).toString()
    const target: Target | undefined = opts.output != null ? await planTarget(opts.output) : undefined
    await withLocal(opts, async (local, signal) => {
      const { size } = await local.stat(key, { signal })
      await writeOut(local.cat(key, { signal, onProgress: progressUpdater(opts, `get ${key.slice(0, 12)}…`, size) }), target, signal)
      if (opts.json !== true) return
      const doc = JSON.stringify(target === undefined ? { cid: key, size } : { cid: key, size, output: opts.output, path: target.path, mode: target.mode }) + '\n'
      // Where the value went to stdout (no -o, or -o /dev/stdout, /dev/fd/1), the document must not follow it there.
      if (target === undefined || (target.mode === 'through' && target.fd === 1)) process.stderr.write(doc)
      else process.stdout.write(doc)
    })
  })

clientOptions(program.command('cat'))
  .description('print a verified byte range of a value')
  .argument('<cid>', 'key of the value')
  .addOption(new Option('--offset <n>', 'first byte').default(0).argParser(nonNegativeInt))
  .addOption(new Option('--length <n>', 'number of bytes (default: to the end)').argParser(nonNegativeInt))
  .addHelpText('after', `
--json: the bytes still go to stdout; { cid, offset, length } (the bytes written) goes to stderr.`)
  .action(async (cid: string, opts: Common & { offset: number, length?: number }) => {
    const key = parseCID(cid).toString()
    await withLocal(opts, async (local, signal) => {
      let length = 0
      const counted = async function * (): AsyncGenerator<Uint8Array> {
        for await (const piece of local.cat(key, { signal, offset: opts.offset, length: opts.length })) { length += piece.length; yield piece }
      }
      await writeOut(counted(), undefined, signal)
      if (opts.json === true) process.stderr.write(JSON.stringify({ cid: key, offset: opts.offset, length }) + '\n')
    })
  })

clientOptions(program.command('stat'))
  .description('size of a value on Global')
  .argument('<cid>', 'key of the value')
  .action(async (cid: string, opts: Common) => {
    parseCID(cid)
    await withLocal(opts, async (local, signal) => {
      const s = await local.stat(cid, { signal })
      print(opts, { cid: s.cid.toString(), size: s.size }, `${s.cid.toString()}\t${s.size} bytes (${formatBytes(s.size)})`)
    })
  })

clientOptions(program.command('has'))
  .description('whether Global has each value (exit status 1 if any is missing)')
  .argument('<cids...>', 'keys to check')
  .action(async (cids: string[], opts: Common) => {
    // Printed in base32, whatever multibase they were given in.
    const keys = cids.map(c => parseCID(c).toString())
    await withLocal(opts, async (local, signal) => {
      const missing = new Set((await local.missing(keys, { signal })).map(c => c.toString()))
      const rows = keys.map(c => ({ cid: c, present: !missing.has(c) }))
      print(opts, rows, rows.map(r => `${r.cid}\t${r.present ? 'yes' : 'no'}`).join('\n'))
      if (rows.some(r => !r.present)) process.exitCode = 1
    })
  })

clientOptions(program.command('rm'))
  .description('delete values from Global and from every connected Local')
  .argument('<cids...>', 'keys to delete')
  .action(async (cids: string[], opts: Common) => {
    // Every key is checked before any is deleted: a typo in the last one deletes nothing.
    const keys = cids.map(c => parseCID(c).toString())
    await withLocal(opts, async (local, signal) => {
      const rows: Array<{ cid: string, removed: boolean }> = []
      for (const cid of keys) rows.push({ cid, removed: await local.delete(cid, { signal }) })
      print(opts, rows, rows.map(r => r.removed ? `removed ${r.cid}` : `not found: ${r.cid}`).join('\n'))
      if (rows.some(r => !r.removed)) process.exitCode = 1
    }, { write: true })
  })

clientOptions(program.command('ls'))
  .description('list the values pinned on Global, with their sizes')
  .action(async (opts: Common) => {
    await withLocal(opts, async (local, signal) => {
      const rows: Array<{ cid: string, size: number }> = []
      for await (const e of local.list({ signal })) {
        rows.push({ cid: e.cid.toString(), size: e.size })
        if (opts.json !== true) process.stdout.write(`${e.cid.toString()}\t${e.size}\n`)
      }
      if (opts.json === true) process.stdout.write(JSON.stringify(rows) + '\n')
    })
  })

program.command('id')
  .description("print the PeerId client commands connect as with this repository (from <repo>/local.key, created if missing): what a Global's --allow-writer names")
  .option('--repo <dir>', 'repository folder ($DSTORE_REPO, default ~/.dstore)')
  .option('--global-key', "print the Global's PeerId for this repository instead")
  .option('--json', 'machine-readable output: { peerId, keyFile, repo }')
  .addHelpText('after', `
Every repository has its own identity: \`dstore put --repo X\` connects as X's PeerId, which
\`dstore id --repo X\` prints. stdout holds only the PeerId; a note on stderr names the key file.`)
  .action(async (opts: { repo?: string, globalKey?: boolean, json?: boolean }) => {
    const repo = resolveRepo(opts.repo)
    const role = opts.globalKey === true ? 'global' : 'local'
    const keyFile = join(repo, `${role}.key`)
    await makeRepo(repo).catch((err: unknown) => { throw new UsageError(`cannot create identity key ${keyFile}: ${describeError(err).line}`, 1) })
    const peerId = await repoPeerId(repo, role)
    if (opts.json === true) {
      process.stdout.write(JSON.stringify({ peerId, keyFile, repo }) + '\n')
      return
    }
    process.stdout.write(`${peerId}\n`)
    process.stderr.write(role === 'local'
      ? `dstore: the PeerId in ${keyFile}, which client commands use with this repository (--repo DIR or DSTORE_REPO picks another, with its own PeerId)\n`
      : `dstore: the PeerId in ${keyFile}, which \`dstore global\` uses with this repository\n`)
  })

clientOptions(program.command('repl'))
  .description('interactive session on a long-lived Local: SET/PUT, GET/OUT, DEL/REM, STATS (--json: one JSON document per answer)')
  .addOption(new Option('--cache-size <bytes>', 'Local cache budget').default(256 * 1024 * 1024).argParser(nonNegativeInt))
  .action(async (opts: Common & { cacheSize: number }) => {
    // Through newLocal, so a malformed --global is a usage error (exit 2) here too, not exit 1.
    const controller = new AbortController()
    const release = onStopSignal(() => { controller.abort() })
    let local: LocalPeer | undefined
    try {
      const created = await newLocal(opts, { cacheSize: opts.cacheSize })
      local = created.local
      const addrs = created.addrs
      await local.ready({ signal: controller.signal })
      await runRepl(local, { version: VERSION, global: addrs[0] }, { json: opts.json === true, signal: controller.signal })
    } finally {
      release()
      await local?.stop()
    }
  })

const verifyStore = storeOptions()
program.command('verify')
  .description("check every value in a Global's store against its CID and outboard (an fs store's Global must be stopped); exit status 1 if any is bad")
  .option('--repo <dir>', 'repository folder of the Global ($DSTORE_REPO, default ~/.dstore)')
  .option('--repair', 'quarantine bad values (bytes moved to <repo>/store/quarantine/, no longer listed or served; a re-put restores them), rebuild bad outboards, and re-index data files the index lacks (a lost index)')
  .option('--json', 'machine-readable output (one JSON document)')
  .addOption(verifyStore.store).addOption(verifyStore.endpoint).addOption(verifyStore.region).addOption(verifyStore.pathStyle)
  .addHelpText('after', `
With --store s3://BUCKET[/PREFIX], the bucket is verified (Globals serving it may keep running:
objects are only read, and with --repair a bad value is moved to PREFIX/quarantine/; staging
objects older than an hour, left by a crashed put, are removed).`)
  .action(async (opts: { repo?: string, repair?: boolean, json?: boolean } & StoreFlags) => {
    const choice = storeChoice(opts)
    if (choice.kind === 's3') { await verifyS3(choice, opts); return }
    const repo = resolveRepo(opts.repo)
    const path = join(repo, 'store')
    // A store whose index was lost still has its data files (blobs/): verify reports them.
    const exists = async (name: string): Promise<boolean> => await stat(join(path, name)).then(() => true, () => false)
    if (!await exists('index.mdb') && !await exists('blobs')) {
      throw new UsageError(`no store to verify at ${path} (is --repo right?)`, 1)
    }
    let store: FsBlobStore
    try {
      // Without --repair, entries whose data file is missing and data files the index does not
      // name (a lost index) are reported, not dropped or re-indexed.
      store = await createFsStore({ path, dropMissingFiles: opts.repair === true, reindexFiles: opts.repair === true })
    } catch (err) {
      // A running Global holds the store's lock: verifying under it would race its puts and deletes.
      const owner = err instanceof StorageError ? err.lockedBy : undefined
      if (owner !== undefined) throw new UsageError(`cannot verify ${path}: it is in use by process ${owner}; stop \`dstore global\` first`, 1)
      throw err
    }
    let report
    try {
      report = await store.verify({
        repair: opts.repair === true,
        onProblem: (p) => {
          if (opts.json === true) return
          const done = !p.repaired ? '' : ({ outboard: '; outboard rebuilt', missing: '; entry dropped', unindexed: '; re-indexed', corrupt: '; quarantined' })[p.problem]
          process.stdout.write(`${p.problem}\t${p.cid.toString()}\t${p.reason}${done}\n`)
        }
      })
    } finally {
      await store.close()
    }
    const bad = report.problems
    if (opts.json === true) {
      process.stdout.write(JSON.stringify({
        store: path,
        ok: bad.length === 0,
        checked: report.checked,
        bytes: report.bytes,
        repair: opts.repair === true,
        bad: bad.map(p => ({ cid: p.cid.toString(), size: p.size, kind: p.kind, problem: p.problem, reason: p.reason, repaired: p.repaired })),
        recovery: store.recovery
      }) + '\n')
    } else {
      const r = store.recovery
      if (r.tempFilesRemoved > 0) process.stdout.write(`opening the store removed ${r.tempFilesRemoved} temp file(s)\n`)
      const unindexed = bad.filter(p => p.problem === 'unindexed').length
      if (unindexed > 0) {
        process.stdout.write(opts.repair === true
          ? `the index was missing ${unindexed} value(s) that have data files: re-indexed them\n`
          : `the index is missing ${unindexed} value(s) that have data files (run with --repair to rebuild the index from them)\n`)
      }
      process.stdout.write(`checked ${report.checked} value(s), ${formatBytes(report.bytes)}: ${bad.length === 0 ? 'all good' : `${bad.length} bad${opts.repair === true ? ', repaired' : ''}`}\n`)
    }
    if (bad.length > 0) {
      process.stderr.write(`dstore: ${bad.length} bad value(s) in ${path}${opts.repair === true ? ' (repaired: run verify again to confirm)' : ' (run with --repair to quarantine bad values, rebuild bad outboards and re-index unindexed files)'}\n`)
      process.exitCode = 1
    }
  })

function progressUpdater (opts: Common, label: string, total: number): (e: { bytes: number }) => void {
  const bar = progressBar(label, opts.progress && opts.json !== true)
  return (e) => { bar.update(e.bytes, total); if (e.bytes >= total) bar.stop() }
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  jsonErrors.enabled = (args.includes('--') ? args.slice(0, args.indexOf('--')) : args).includes('--json')
  try {
    await program.parseAsync(process.argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; commander has already printed the usage error line.
      process.exitCode = err.exitCode === 0 ? 0 : 2
      return
    }
    // Interrupted: the abort's own error says less than which signal it was.
    if (interruptedStatus() === undefined) process.exitCode = reportError(err)
  }
  const status = interruptedStatus()
  if (status !== undefined) {
    reportInterrupted()
    process.exitCode = status
  }
}

/**
 * The exit status when stdout's reader closed it early (`dstore get K | head -c 10`): what a
 * shell reports for a command SIGPIPE killed (128 + 13), as for GNU cat, so `set -o pipefail`
 * sees the output was cut short. Node ignores SIGPIPE, so it is an exit status, not the signal.
 */
const EXIT_EPIPE = 141

// No error line, as cat prints none: the reader went away on purpose, and the status says so.
process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(EXIT_EPIPE) })
/** Resolves once everything written to `stream` so far has been handed to the OS (interrupted: or after 1 s). */
async function flush (stream: NodeJS.WriteStream): Promise<void> {
  await new Promise<void>(resolve => {
    stream.write('', () => { resolve() })
    // A reader that stopped reading must not keep an interrupted command alive.
    if (interruptedStatus() !== undefined) setTimeout(resolve, 1000).unref()
  })
}

await main()
// A pipeline into stdout resolves when its source ends, possibly before the last chunk left
// stdout's queue (a full pipe): exiting now would cut the output short. Flush, then exit (libp2p
// may leave timers behind; the work is done).
await Promise.all([flush(process.stdout), flush(process.stderr)])
process.exit(process.exitCode ?? 0)
