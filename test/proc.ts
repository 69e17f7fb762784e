/**
 * Helpers for tests that run the real `dstore` binary (package.json's `bin`, the bundled CLI) in
 * child processes: one-shot commands, a `dstore global` daemon on a temp repo, and `dstore local` daemons.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { blake3 } from '@noble/hashes/blake3.js'

export const HERE = dirname(fileURLToPath(import.meta.url))
/** The real binary: what package.json's `bin` names (the bundled CLI), as `npx dstore` runs it. */
export const ROOT = join(HERE, '..', '..')
export const BIN = join(ROOT, (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: { dstore: string } }).bin.dstore)
export const VERSION: string = JSON.parse(readFileSync(join(HERE, '..', '..', 'package.json'), 'utf8')).version
export const COMMANDS = ['global', 'local', 'put', 'get', 'cat', 'stat', 'has', 'rm', 'ls', 'id', 'repl']
/** Exactly one line on stderr, in the CLI's error format (and so no stack trace). */
export const ONE_LINE = /^dstore: [^\n]+\n$/

export interface Result { code: number | null, signal: NodeJS.Signals | null, stdout: Buffer, out: string, stderr: string }

/** The environment a client sees: only what the test sets (no DSTORE_* or DEBUG from outside). */
export function cleanEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.DSTORE_REPO
  delete env.DSTORE_GLOBAL
  delete env.DEBUG
  return { ...env, ...extra }
}

/**
 * The BLAKE3 backend a child started with this process's environment reports (`--json`): the
 * native addon this install built, unless DSTORE_BLAKE3 forces another.
 */
export function expectedBackend (): RegExp {
  const forced = process.env.DSTORE_BLAKE3
  return forced === 'js' ? /^js$/ : forced === 'wasm' ? /^wasm-simd$/ : /^native-simd\d+$/
}

/** Runs the CLI to completion; `input` is piped to stdin (stdin is closed otherwise). */
export async function dstore (args: string[], opts: { env?: Record<string, string>, input?: string | Uint8Array, timeout?: number } = {}): Promise<Result> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(opts.env), timeout: opts.timeout ?? 30_000, stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out)
      resolve({ code, signal, stdout, out: stdout.toString('utf8'), stderr: Buffer.concat(err).toString('utf8') })
    })
    child.stdin.on('error', () => {}) // the child may exit before reading all of its input
    child.stdin.end(opts.input ?? '')
  })
}

/** A running `dstore global`. */
export interface Daemon { proc: ChildProcess, stdout: () => string, stderr: () => string, addr: string, peerId: string }

/** Starts `dstore global` and waits for its "listening" line (and the rest of its banner). */
export async function startGlobal (args: string[], opts: { defaultHttp?: boolean, env?: Record<string, string> } = {}): Promise<Daemon> {
  // Tests get no fixed ports: Global's HTTP listener (default 127.0.0.1:5080) on a free one,
  // unless the test is about that default.
  const http = args.includes('--http') || opts.defaultHttp === true ? [] : ['--http', '127.0.0.1:0']
  const proc = spawn(process.execPath, [BIN, 'global', ...http, ...args], { env: cleanEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout!.on('data', (b: Buffer) => { stdout += b.toString('utf8') })
  proc.stderr!.on('data', (b: Buffer) => { stderr += b.toString('utf8') })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`dstore global did not start: ${stdout}${stderr}`)) }, 20_000)
    const check = (): void => {
      if (stdout.includes('Press Ctrl+C to stop.\n')) { clearTimeout(timer); resolve() }
    }
    proc.stdout!.on('data', check)
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`dstore global exited with ${String(code)}: ${stdout}${stderr}`)) })
  })
  const m = /^Dstore server listening on (\S+)$/m.exec(stdout)
  assert.ok(m, stdout)
  const peerId = /^PeerId: (\S+)$/m.exec(stdout)?.[1]
  assert.ok(peerId, stdout)
  return { proc, stdout: () => stdout, stderr: () => stderr, addr: m[1], peerId }
}

/** A running `dstore local`: its output so far, and its HTTP URL ('' with `--http off`). */
export interface LocalDaemon { proc: ChildProcess, stdout: () => string, stderr: () => string, url: string }

/**
 * Starts `dstore local` and waits for its banner (with `--json`, its document). Tests get no
 * fixed ports: its swarm listener (default /ip4/0.0.0.0/tcp/4002) is on a free loopback port
 * unless the test gives `--listen`, turns the swarm off, or asks for the default (`defaultListen`).
 * `nodeArgs` go to node, before the script.
 */
export async function startLocal (args: string[], env: Record<string, string> = {}, opts: { defaultListen?: boolean, nodeArgs?: string[] } = {}): Promise<LocalDaemon> {
  const given = (flag: string, value: string): boolean => args.some((a, i) => a === flag && args[i + 1] === value)
  const swarmOff = given('--swarm', 'off')
  const listen = args.includes('--listen') || swarmOff || opts.defaultListen === true ? [] : ['--listen', '/ip4/127.0.0.1/tcp/0']
  const proc = spawn(process.execPath, [...opts.nodeArgs ?? [], BIN, 'local', ...listen, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout!.on('data', (b: Buffer) => { stdout += b.toString('utf8') })
  proc.stderr!.on('data', (b: Buffer) => { stderr += b.toString('utf8') })
  const json = args.includes('--json')
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`dstore local did not start: ${stdout}${stderr}`)) }, 20_000)
    proc.stdout!.on('data', () => { if (json ? stdout.includes('\n') : stdout.includes('Press Ctrl+C to stop.\n')) { clearTimeout(timer); resolve() } })
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`dstore local exited with ${String(code)}: ${stdout}${stderr}`)) })
  })
  const url = json ? (JSON.parse(stdout) as { http: string | null }).http : /^HTTP: (\S+) \(URL in /m.exec(stdout)?.[1]
  if (!given('--http', 'off')) assert.ok(url, stdout)
  return { proc, stdout: () => stdout, stderr: () => stderr, url: url ?? '' }
}

/** Sends `signal` to a `dstore local` and waits for it to exit, all its output read. */
export async function stopLocal (d: LocalDaemon, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (d.proc.exitCode !== null || d.proc.signalCode !== null) return d.proc.exitCode
  const closed = new Promise<number | null>(resolve => d.proc.once('close', (code) => { resolve(code) }))
  d.proc.kill(signal)
  const timer = setTimeout(() => d.proc.kill('SIGKILL'), 15_000)
  const code = await closed
  clearTimeout(timer)
  return code
}

/** Sends `signal` and waits for the daemon to exit. */
export async function stopGlobal (g: Daemon, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null, stdout: string, stderr: string }> {
  if (g.proc.exitCode !== null || g.proc.signalCode !== null) return { code: g.proc.exitCode, stdout: g.stdout(), stderr: g.stderr() }
  // 'close', not 'exit': only then has all of its stdout (the "Global stopped." line) been read.
  const exited = new Promise<number | null>(resolve => g.proc.once('close', (code) => { resolve(code) }))
  g.proc.kill(signal)
  const timer = setTimeout(() => g.proc.kill('SIGKILL'), 15_000)
  const code = await exited
  clearTimeout(timer)
  return { code, stdout: g.stdout(), stderr: g.stderr() }
}

/** The dstore key of `bytes`, computed independently of dstore: CIDv1, raw (0x55), blake3 (0x1e). */
export function blake3Cid (bytes: Uint8Array): string {
  return CID.createV1(0x55, Digest.create(0x1e, blake3(bytes))).toString()
}

/** A TCP port on 127.0.0.1 that was free a moment ago (to restart a daemon on the same address). */
export async function freePort (): Promise<number> {
  const { createServer } = await import('node:net')
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => { resolve(port) })
    })
  })
}

/** SIGKILLs a daemon (no cleanup of any kind runs in it) and waits until it is gone. */
export async function killGlobal (g: Daemon): Promise<void> {
  if (g.proc.exitCode !== null || g.proc.signalCode !== null) return
  const gone = new Promise<void>(resolve => g.proc.once('exit', () => { resolve() }))
  g.proc.kill('SIGKILL')
  await gone
}
