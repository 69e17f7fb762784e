/**
 * How the CLI reports: one readable line per error on stderr (`dstore: …`), exit status 0 on
 * success, 1 on an error, 2 on a usage error (141 when stdout's reader closed it early, see
 * dstore.ts), never a stack trace unless `DEBUG` is set;
 * progress bars on stderr, only when stderr is a terminal.
 */
import cliProgress from 'cli-progress'
import { DstoreError } from '../src/index.js'

/** A mistake in how the command was called (exit 2), or a setup problem with a hint (exit 1). */
export class UsageError extends Error {
  override name = 'UsageError'
  readonly code: string
  constructor (message: string, readonly exitCode = 2) {
    super(message)
    this.code = exitCode === 2 ? 'ERR_USAGE' : 'ERR_SETUP'
  }
}

/**
 * Whether errors are printed as JSON: set from `--json` on the command line (before any `--`),
 * so that even an error commander finds while parsing is one JSON document.
 */
export const jsonErrors = { enabled: false }

const HINTS: Record<string, string> = {
  ERR_GLOBAL_UNREACHABLE: 'is `dstore global` running? Pass --global MULTIADDR to use another one',
  ERR_VERIFICATION_FAILED: 'the data did not match its CID and was discarded; nothing unverified was written',
  ERR_DAEMON_UNREACHABLE: 'did `dstore local` stop? --no-daemon runs a Local of its own',
  ERR_STORE_UNAVAILABLE: 'is the S3 endpoint up? It is --s3-endpoint or AWS_ENDPOINT_URL when not AWS'
}

/** The one-line message for an error, and the exit status it maps to. */
export function describeError (err: unknown): { line: string, exitCode: number } {
  const d = describe(err)
  // Some libraries put a wrapped error's stack into their message (libp2p's listen failure does):
  // drop the stack-frame lines so the message stays one readable line.
  return { ...d, line: d.line.split('\n').filter(l => !/^\s+at \S/.test(l)).join(' ').replace(/\s+/g, ' ').trim() }
}

function describe (err: unknown): { line: string, exitCode: number } {
  if (err instanceof UsageError) return { line: err.message, exitCode: err.exitCode }
  if (err instanceof DstoreError) {
    const hint = HINTS[err.code]
    return { line: hint != null ? `${err.message} (${hint})` : err.message, exitCode: 1 }
  }
  const e = err as NodeJS.ErrnoException
  if (typeof e?.code === 'string' && typeof e.path === 'string') {
    const what: Record<string, string> = {
      ENOENT: 'no such file or directory',
      EACCES: 'permission denied',
      EPERM: 'operation not permitted',
      EROFS: 'read-only file system',
      EISDIR: 'is a directory',
      ENOTDIR: 'a parent is not a directory',
      ENOSPC: 'no space left on the device'
    }
    return { line: `cannot use ${e.path}: ${what[e.code] ?? e.message}`, exitCode: 1 }
  }
  return { line: e?.message ?? String(err), exitCode: 1 }
}

/** The JSON form of an error: `{ name, code, message }` (message: the same one line as in text). */
export function errorJson (err: unknown): { name: string, code: string, message: string } {
  const e = err as { name?: unknown, code?: unknown }
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    code: typeof e?.code === 'string' ? e.code : 'ERR_UNKNOWN',
    message: describeError(err).line
  }
}

/**
 * Prints the error: one `dstore: …` line on stderr, or with `--json` one JSON document
 * `{"error":{"name","code","message"}}` on stderr (stdout stays for results); the stack too
 * with DEBUG set.
 */
export function reportError (err: unknown): number {
  const { line, exitCode } = describeError(err)
  if (jsonErrors.enabled) process.stderr.write(JSON.stringify({ error: errorJson(err) }) + '\n')
  else process.stderr.write(`dstore: ${line.replace(/\s*\n\s*/g, ' ')}\n`)
  if (process.env.DEBUG != null && process.env.DEBUG !== '' && err instanceof Error && err.stack != null) {
    process.stderr.write(err.stack + '\n')
  }
  return exitCode
}

export interface Progress {
  update: (bytes: number, total?: number) => void
  stop: () => void
}

/** A progress bar on stderr when it is a terminal (and not disabled); a no-op otherwise. */
export function progressBar (label: string, enabled: boolean): Progress {
  if (!enabled || process.stderr.isTTY !== true) return { update: () => {}, stop: () => {} }
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {percentage}% | {done} / {all} | {rate}`,
    hideCursor: true,
    clearOnComplete: true
  }, cliProgress.Presets.shades_classic)
  let started = false
  const t0 = performance.now()
  return {
    update (bytes, total) {
      const payload = { done: formatBytes(bytes), all: total != null ? formatBytes(total) : '?', rate: `${formatBytes(bytes / Math.max(1e-3, (performance.now() - t0) / 1000))}/s` }
      if (!started) { bar.start(total ?? 0, bytes, payload); started = true }
      if (total != null) bar.setTotal(total)
      bar.update(bytes, payload)
    },
    stop () { if (started) bar.stop() }
  }
}

export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`
}
