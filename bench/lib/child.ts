/**
 * Runs a bench role in a child process and talks to it in JSON lines over stdin/stdout, so
 * each role (a Global, a raw-stream server) is measured as its own process, as deployed.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

const HERE = dirname(fileURLToPath(import.meta.url))

export class Child {
  private readonly proc: ChildProcess
  private readonly replies: Array<(v: any) => void> = []
  private readonly exited: Promise<number | null>
  private done = false
  private stopping: Promise<'exited' | 'killed'> | undefined
  /** The core the child was pinned to (`opts.cpu`), if any. */
  readonly cpu: number | undefined

  /**
   * `opts.cpu` pins the child to that core (`taskset -c`; taskset execs node, so the pid and
   * signals are node's): how the pinned bench mode puts each side on a core of its own.
   * `opts.onStderr` receives the child's stderr line by line (otherwise it is the bench's).
   */
  constructor (script: string, args: string[] = [], env: Record<string, string> = {}, opts: { cpu?: number, onStderr?: (line: string) => void } = {}) {
    // BENCH_CHILD_NODE_ARGS passes flags to the child's node, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"
    // (from `env` when given there, so one child alone can be profiled).
    const nodeArgs = (env.BENCH_CHILD_NODE_ARGS ?? process.env.BENCH_CHILD_NODE_ARGS ?? '').split(' ').filter(a => a !== '')
    const argv = [...nodeArgs, join(HERE, '..', script), ...args]
    this.cpu = opts.cpu
    const [cmd, cmdArgs] = opts.cpu === undefined ? [process.execPath, argv] : ['taskset', ['-c', String(opts.cpu), process.execPath, ...argv]]
    this.proc = spawn(cmd, cmdArgs, { stdio: ['pipe', 'pipe', opts.onStderr === undefined ? 'inherit' : 'pipe'], env: { ...process.env, ...env } })
    if (opts.onStderr !== undefined) createInterface({ input: this.proc.stderr! }).on('line', opts.onStderr)
    const rl = createInterface({ input: this.proc.stdout! })
    rl.on('line', line => {
      const waiter = this.replies.shift()
      waiter?.(JSON.parse(line))
    })
    // A process that could not be spawned (no taskset, say) emits `error` and never `exit`.
    this.exited = new Promise(resolve => {
      this.proc.on('exit', code => { this.done = true; resolve(code) })
      this.proc.on('error', () => { if (this.proc.pid === undefined) { this.done = true; resolve(null) } })
    })
    // A child that died (or never started) must not crash the bench with EPIPE on its stdin.
    this.proc.stdin!.on('error', () => {})
  }

  /**
   * Like `call`, but rejects when the process exits before answering or when no answer comes
   * within `timeoutMs` (the process is then killed: its answer queue can no longer be trusted).
   */
  async callWithin<T = any> (cmd: Record<string, unknown>, timeoutMs: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const died = this.exited.then(code => { throw new Error(`role process exited (code ${String(code)}) before answering ${String(cmd.cmd)}`) })
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        this.proc.kill('SIGKILL')
        reject(new Error(`no answer to ${String(cmd.cmd)} within ${timeoutMs} ms`))
      }, timeoutMs)
    })
    try {
      return await Promise.race([this.call<T>(cmd), died, late])
    } finally {
      clearTimeout(timer)
      died.catch(() => {})
    }
  }

  /** The child's pid (node's: taskset execs it), or undefined when it could not be spawned. */
  get pid (): number | undefined { return this.proc.pid }

  /**
   * The cores the child may run on (Linux: `Cpus_allowed_list` of /proc/PID/status, e.g. "1"
   * or "0-1"), or undefined when it cannot be read. Read after the child has answered once:
   * before that, taskset may not have set the affinity yet.
   */
  async allowedCpus (): Promise<string | undefined> {
    if (this.proc.pid === undefined) return undefined
    const { readFile } = await import('node:fs/promises')
    try {
      return /Cpus_allowed_list:\s*(\S+)/.exec(await readFile(`/proc/${this.proc.pid}/status`, 'utf8'))?.[1]
    } catch { return undefined }
  }

  /** Whether the process is still running. */
  get running (): boolean { return !this.done }

  /** Kills the process at once (for a role that hung or failed). */
  async kill (): Promise<void> {
    this.proc.kill('SIGKILL')
    await this.exited
  }

  /** Sends a command and waits for its one-line JSON answer. */
  async call<T = any> (cmd: Record<string, unknown>): Promise<T> {
    const answer = new Promise<any>(resolve => this.replies.push(resolve))
    this.proc.stdin!.write(JSON.stringify(cmd) + '\n')
    const reply = await answer
    if (reply?.error != null) throw new Error(`child: ${String(reply.error)}`)
    return reply as T
  }

  /**
   * Asks the child to exit (a role stops its peers first) and waits until it has. A child that
   * neither answers nor exits within `graceMs`, or exits more than 5 s after answering, is
   * killed; one that has already died returns at once. → `'killed'` when stop killed it,
   * `'exited'` when it ended otherwise (it exited, crashed, was signalled by someone else, or
   * never started). Calls after the first wait for the same stop.
   */
  async stop (graceMs = 30_000): Promise<'exited' | 'killed'> {
    this.stopping ??= (async () => {
      if (this.done) return 'exited'
      let killed = false
      const kill = (): void => { killed = true; this.proc.kill('SIGKILL') }
      let timer = setTimeout(kill, graceMs)
      try { await Promise.race([this.call({ cmd: 'exit' }), this.exited]) } catch {}
      clearTimeout(timer)
      timer = setTimeout(kill, 5000)
      await this.exited
      clearTimeout(timer)
      return killed ? 'killed' : 'exited'
    })()
    return await this.stopping
  }
}

/** Peak resident memory of this process since the last reset, in MiB (Linux: VmHWM). */
export async function peakRssMiB (): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const status = await readFile('/proc/self/status', 'utf8')
  const m = /VmHWM:\s+(\d+) kB/.exec(status)
  return m != null ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20
}

/** Resets the peak-RSS mark of this process (Linux: write 5 to clear_refs). */
export async function resetPeakRss (): Promise<void> {
  const { writeFile } = await import('node:fs/promises')
  try { await writeFile('/proc/self/clear_refs', '5') } catch {}
}

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

export function percentile (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)]
}
