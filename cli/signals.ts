/**
 * Stop signals for client commands: the first SIGINT (Ctrl+C) or SIGTERM aborts the command,
 * which winds down and exits 130 or 143 (128 + the signal's number, what shells expect); a
 * second one, with no handler left, kills the process outright.
 */
import { jsonErrors } from './output.js'

const EXIT = { SIGINT: 130, SIGTERM: 143 } as const
type StopSignal = keyof typeof EXIT

let interrupted: StopSignal | undefined
let reported = false

/** The exit status of an interrupted command, or undefined if no stop signal came. */
export function interruptedStatus (): number | undefined {
  return interrupted === undefined ? undefined : EXIT[interrupted]
}

/**
 * Until the returned function is called, SIGINT and SIGTERM call `abort`. Should the process
 * still be running 2 s later (something it waits on ignores the abort), it exits anyway: one
 * signal must be enough.
 */
export function onStopSignal (abort: () => void): () => void {
  const handler = (sig: StopSignal): void => {
    interrupted ??= sig
    abort()
    setTimeout(() => { reportInterrupted(); process.exit(EXIT[sig]) }, 2000).unref()
  }
  process.once('SIGINT', handler)
  process.once('SIGTERM', handler)
  return () => { process.off('SIGINT', handler); process.off('SIGTERM', handler) }
}

/** Prints, once, which signal interrupted the command (a JSON error with --json). */
export function reportInterrupted (): void {
  if (interrupted === undefined || reported) return
  reported = true
  const message = `interrupted by ${interrupted}`
  process.stderr.write(jsonErrors.enabled ? JSON.stringify({ error: { name: 'AbortError', code: 'ERR_ABORTED', message } }) + '\n' : `dstore: ${message}\n`)
}
