/**
 * Issue #14's sections of docs/BENCHMARKS.md: shared and pinned cores side by side, the
 * issue's targets checked against the runs, and before → after for every figure the issue
 * names. Inputs: the comparison on shared cores (bench/results/latest.json), the same pinned
 * (pinned.json), and the baselines (before-14.json, before-14-pinned.json); any may be missing,
 * and then the document says "not run" or "no baseline" rather than a figure.
 */
import { cpuBoundMBps, fig, num, sizeName, table, unavailable, type CompareResult, type SystemResult, type Timed } from './report.js'

/** One comparison run in each mode, either possibly missing. */
export interface SpeedRuns { shared?: CompareResult, pinned?: CompareResult }

const MiB = 1 << 20
const GiB = 1 << 30
/** The size the issue's throughput targets are about. */
const BIG = 256 * MiB
/** The system the issue's targets are about (TLS is the default encryption). */
const SYS = 'dstore-tls'

function sys (r: CompareResult | undefined, name = SYS): SystemResult | undefined {
  const s = r?.systems[name]
  return s?.available === true ? s : undefined
}

function rawTls (r: CompareResult | undefined): Timed | undefined {
  return r?.raw.tls?.[BIG]
}

function cpuSum (t: Timed | undefined): number | undefined {
  return t?.cpuPerGB == null ? undefined : t.cpuPerGB.sender.median + t.cpuPerGB.receiver.median
}

function over (a: Timed | undefined, b: Timed | undefined): number | undefined {
  return a == null || b == null || b.MBps.median === 0 ? undefined : a.MBps.median / b.MBps.median
}

function x (v: number | undefined): string {
  return v === undefined ? '–' : `${v.toFixed(2)}×`
}

function runName (r: CompareResult): string {
  return `${r.date.slice(0, 10)}${r.quick ? ', quick run' : ''}, load average ${r.loadavg.before.map(x => x.toFixed(1)).join('/')} at the start`
}

// ---- shared and pinned side by side ------------------------------------------------------

/** The transfers compared across modes: label and how to find each in a run. */
function transfers (runs: CompareResult[]): Array<[string, (r: CompareResult) => Timed | undefined]> {
  const names = [...new Set(runs.flatMap(r => Object.values(r.systems).filter(s => s.available).map(s => s.system)))]
  const kinds = [...new Set(runs.flatMap(r => Object.keys(r.raw)))]
  const out: Array<[string, (r: CompareResult) => Timed | undefined]> = []
  for (const n of names) {
    const dstore = n.startsWith('dstore')
    out.push([dstore ? `${n}: cold Local.get` : `${n}: cold get`, r => sys(r, n)?.coldGet[BIG]])
    if (dstore) {
      out.push([`${n}: cold Local.cat`, r => sys(r, n)?.cat?.[BIG]])
      out.push([`${n}: cold Local.get into a reused buffer`, r => sys(r, n)?.getInto?.[BIG]])
      out.push([`${n}: Local.put over the network (sender: the Local)`, r => sys(r, n)?.localPut?.[BIG]])
    }
  }
  for (const k of kinds) out.push([`raw libp2p ${k === 'tcp' ? 'node:net TCP' : `stream, ${k}`}`, r => r.raw[k]?.[BIG]])
  return out
}

/** Throughput, each side's CPU, the bound and the share of it reached, of one transfer in one run. */
function modeCells (r: CompareResult | undefined, t: Timed | undefined): string[] {
  if (r == null || t == null) return ['–', '–', '–']
  const cpu = t.cpuPerGB == null ? '–' : `${t.cpuPerGB.sender.median.toFixed(2)} / ${t.cpuPerGB.receiver.median.toFixed(2)}`
  const bound = t.cpuPerGB == null ? undefined : cpuBoundMBps(r.mode, r.cores, t.cpuPerGB)
  return [fig(t.MBps), cpu, bound === undefined ? '–' : `${num(bound)} MB/s, ${(100 * t.MBps.median / bound).toFixed(0)}%`]
}

/** Shared and pinned cores side by side: throughput and each side's CPU seconds per GB, 256 MiB. */
export function modesSection (runs: SpeedRuns): string {
  const present = [runs.shared, runs.pinned].filter((r): r is CompareResult => r != null)
  if (present.length === 0) return ''
  // A mode with no run has no columns (the text says "not run").
  const modes = (['shared', 'pinned'] as const).filter(m => runs[m] != null)
  const rows = transfers(present).map(([label, pick]) => [label, ...modes.flatMap(m => modeCells(runs[m], pick(runs[m]!)))])
  const head = modes.flatMap(m => [`${m} MB/s`, `${m} CPU s/GB sender / receiver`, `${m} bound, of bound`])
  const p = runs.pinned?.pinning
  const when = (r: CompareResult | undefined, file: string): string => r == null ? `not run (${file} missing)` : `${runName(r)} (${file})`
  return `## Shared and pinned cores (${sizeName(BIG)})

Shared: both processes may run on all ${present[0].cores} cores, so they compete for them: the bound is
cores / (sender + receiver CPU s per GB). Pinned (\`npm run bench -- --pinned\`): providers and
servers on core ${p?.provider ?? 0}, requesters and clients on core ${p?.requester ?? 1} (\`taskset\`), as two hosts
would run; each side has its own core, so the bound is 1 / max(sender, receiver) GB/s. CPU is
all threads of each process, seconds per 10^9 bytes, median; "of bound" is the measured median
over that bound. Shared: ${when(runs.shared, 'latest.json')}; pinned: ${when(runs.pinned, 'pinned.json')}.${runs.pinned == null ? '\n\n**Pinned mode: not run.**' : ''}${runs.shared == null ? '\n\n**Shared mode: not run.**' : ''}

${table(['', ...head], rows)}
${runs.pinned != null && unavailable(runs.pinned) !== '' ? `\nIn the pinned run:\n\n${unavailable(runs.pinned)}` : ''}`
}

// ---- targets ------------------------------------------------------------------------------

interface Target {
  what: string
  /** Which run the target is checked against. */
  mode: keyof SpeedRuns
  /** The figure as text, and whether it meets the target; undefined when the run lacks it. */
  check: (r: CompareResult) => { text: string, ok: boolean } | undefined
}

const LIMIT_CPU_GB = 4.5
/** The targets (a function, not a constant: report.ts and this module import each other). */
function targets (): Target[] {
  return [
  {
    what: `cold get ${sizeName(BIG)}, shared: both sides ≤ ${LIMIT_CPU_GB} s CPU per GB`,
    mode: 'shared',
    check: r => {
      const t = sys(r)?.coldGet[BIG]
      const sum = cpuSum(t)
      if (t?.cpuPerGB == null || sum === undefined) return undefined
      return { text: `${sum.toFixed(2)} (sender ${t.cpuPerGB.sender.median.toFixed(2)} + receiver ${t.cpuPerGB.receiver.median.toFixed(2)})`, ok: sum <= LIMIT_CPU_GB }
    }
  },
  ratioTarget(`cold Local.get of ${sizeName(BIG)}`, 'shared', 0.45, r => sys(r)?.coldGet[BIG]),
  ratioTarget(`cold Local.cat of ${sizeName(BIG)}`, 'shared', 0.6, r => sys(r)?.cat?.[BIG]),
  ratioTarget(`cold Local.get of ${sizeName(BIG)}`, 'pinned', 0.6, r => sys(r)?.coldGet[BIG]),
  ratioTarget(`Local.put of ${sizeName(BIG)} over the network`, 'shared', 0.5, r => sys(r)?.localPut?.[BIG]),
  {
    what: `put ${sizeName(BIG)} at the API ≥ 500 MB/s (beside: a plain write of the same bytes, same run)`,
    mode: 'shared',
    check: r => {
      const s = sys(r)
      const put = s?.put[BIG]
      if (put == null) return undefined
      const plain = s?.plainWrite?.[BIG]
      return { text: `${num(put.MBps.median)} MB/s; plain write ${plain == null ? 'not measured' : `${num(plain.MBps.median)} MB/s`}`, ok: put.MBps.median >= 500 }
    }
  },
  {
    what: '100-byte get, steady state: p99 ≤ 2 ms',
    mode: 'shared',
    check: r => {
      const l = sys(r)?.small?.steady
      return l == null ? undefined : { text: `${num(l.p99Ms)} ms (p50 ${num(l.medianMs)})`, ok: l.p99Ms <= 2 }
    }
  },
  {
    what: '100-byte get, first 1,000 of a fresh Local: p99 ≤ 3 ms',
    mode: 'shared',
    check: r => {
      const l = sys(r)?.small?.cold
      return l == null ? undefined : { text: `${num(l.p99Ms)} ms (p50 ${num(l.medianMs)})`, ok: l.p99Ms <= 3 }
    }
  },
  ...(['shared', 'pinned'] as const).map((mode): Target => ({
    what: `1,000 concurrent cold gets ≤ 150 ms in every run (${mode}; the slowest repetition)`,
    mode,
    check: r => {
      const c = sys(r)?.concurrent?.totalMs
      return c == null ? undefined : { text: `max ${num(c.max)} ms (median ${num(c.median)}, ${c.reps} run${c.reps === 1 ? '' : 's'})`, ok: c.max <= 150 }
    }
  })),
  {
    what: 'peak RSS ≤ 200 MiB on either side, streamed cold get of 1 GiB (the highest repetition)',
    mode: 'shared',
    check: r => {
      const m = sys(r)?.rss[GiB]
      if (m == null) return undefined
      return { text: `requester ${num(m.requesterPeakMiB.max)}, provider ${num(m.providerPeakMiB.max)} MiB`, ok: Math.max(m.requesterPeakMiB.max, m.providerPeakMiB.max) <= 200 }
    }
  }
  ]
}

function ratioTarget (what: string, mode: keyof SpeedRuns, min: number, pick: (r: CompareResult) => Timed | undefined): Target {
  return {
    what: `${what} ≥ ${min}× the raw TLS stream (${mode}, same run)`,
    mode,
    check: r => {
      const t = pick(r)
      const q = over(t, rawTls(r))
      if (t == null || q === undefined) return undefined
      return { text: `${num(t.MBps.median)} MB/s = ${x(q)} (raw TLS ${num(rawTls(r)!.MBps.median)} MB/s)`, ok: q >= min }
    }
  }
}

/** Issue #14's targets, checked against the stored runs, with the baseline's figure beside each. */
export function speedTargetsSection (after: SpeedRuns, before: SpeedRuns): string {
  if (after.shared == null && after.pinned == null) return ''
  const rows = targets().map(t => {
    const a = after[t.mode]
    const b = before[t.mode]
    const got = a == null ? undefined : t.check(a)
    const was = b == null ? undefined : t.check(b)
    const status = a == null ? `not run (no ${t.mode === 'pinned' ? 'pinned.json' : 'latest.json'})` : got === undefined ? 'not measured' : got.ok ? '**met**' : 'not met'
    return [t.what, b == null ? 'no baseline' : was?.text ?? '–', a == null ? '–' : got?.text ?? '–', status]
  })
  const note = (r: CompareResult | undefined, file: string): string => r == null ? `${file}: none` : `${file}: ${runName(r)}`
  return `## Targets (issue #14), checked against the runs

Computed from the stored results for ${SYS} (the document cannot claim more than the data
shows). Before: ${note(before.shared, 'before-14.json')}, ${note(before.pinned, 'before-14-pinned.json')}${before.pinned?.quick === true ? ' (a single quick run on a shared machine: noisy)' : ''}; after: ${note(after.shared, 'latest.json')}, ${note(after.pinned, 'pinned.json')}.
A "–" before is a figure the baseline's harness did not measure. A ratio to the raw stream is
only as good as the raw figure of the same run: other work on the machine slows the raw stream
too (a load average above the core count makes both figures noise).

${table(['target', 'before', 'after', ''], rows)}
`
}

// ---- before and after ---------------------------------------------------------------------

type Pick = (r: CompareResult) => number | undefined

/** Every figure issue #14 names (for one dstore system), with which way is better. */
function figures (name: string): Array<[string, Pick, 'higher' | 'lower']> {
  const s = (r: CompareResult): SystemResult | undefined => sys(r, name)
  const z = sizeName(BIG)
  return [
    [`cold Local.get ${z} (MB/s)`, r => s(r)?.coldGet[BIG]?.MBps.median, 'higher'],
    [`cold Local.get ${z}: CPU s/GB, sender (provider)`, r => s(r)?.coldGet[BIG]?.cpuPerGB?.sender.median, 'lower'],
    [`cold Local.get ${z}: CPU s/GB, receiver (requester)`, r => s(r)?.coldGet[BIG]?.cpuPerGB?.receiver.median, 'lower'],
    [`cold Local.get ${z}: CPU s/GB, both sides`, r => cpuSum(s(r)?.coldGet[BIG]), 'lower'],
    [`cold Local.get ${z} / raw TLS`, r => over(s(r)?.coldGet[BIG], rawTls(r)), 'higher'],
    [`caller's copy of a ${z} Local.get result (ms)`, r => s(r)?.callerCopy?.[BIG]?.median, 'lower'],
    [`cold Local.get ${z} into a reused buffer (MB/s)`, r => s(r)?.getInto?.[BIG]?.MBps.median, 'higher'],
    [`cold Local.get ${z} into a reused buffer: CPU s/GB, receiver`, r => s(r)?.getInto?.[BIG]?.cpuPerGB?.receiver.median, 'lower'],
    [`cold Local.get ${z} into a reused buffer / raw TLS`, r => over(s(r)?.getInto?.[BIG], rawTls(r)), 'higher'],
    [`cold Local.cat ${z} (MB/s)`, r => s(r)?.cat?.[BIG]?.MBps.median, 'higher'],
    [`cold Local.cat ${z}: CPU s/GB, sender`, r => s(r)?.cat?.[BIG]?.cpuPerGB?.sender.median, 'lower'],
    [`cold Local.cat ${z}: CPU s/GB, receiver`, r => s(r)?.cat?.[BIG]?.cpuPerGB?.receiver.median, 'lower'],
    [`cold Local.cat ${z} / raw TLS`, r => over(s(r)?.cat?.[BIG], rawTls(r)), 'higher'],
    [`Local.put ${z} over the network (MB/s)`, r => s(r)?.localPut?.[BIG]?.MBps.median, 'higher'],
    [`Local.put ${z}: CPU s/GB, the Local`, r => s(r)?.localPut?.[BIG]?.cpuPerGB?.sender.median, 'lower'],
    [`Local.put ${z}: CPU s/GB, the Global`, r => s(r)?.localPut?.[BIG]?.cpuPerGB?.receiver.median, 'lower'],
    [`Local.put ${z} / raw TLS`, r => over(s(r)?.localPut?.[BIG], rawTls(r)), 'higher'],
    [`put ${z} at the API (MB/s)`, r => s(r)?.put[BIG]?.MBps.median, 'higher'],
    [`plain write ${z}, same run (MB/s)`, r => s(r)?.plainWrite?.[BIG]?.MBps.median, 'higher'],
    [`raw TLS stream ${z} (MB/s)`, r => rawTls(r)?.MBps.median, 'higher'],
    [`raw TLS stream ${z}: CPU s/GB, sender`, r => rawTls(r)?.cpuPerGB?.sender.median, 'lower'],
    [`raw TLS stream ${z}: CPU s/GB, receiver`, r => rawTls(r)?.cpuPerGB?.receiver.median, 'lower'],
    ['100-byte get, first 1,000: p50 (ms)', r => s(r)?.small?.cold.medianMs, 'lower'],
    ['100-byte get, first 1,000: p99 (ms)', r => s(r)?.small?.cold.p99Ms, 'lower'],
    ['100-byte get, steady state: p50 (ms)', r => s(r)?.small?.steady?.medianMs, 'lower'],
    ['100-byte get, steady state: p99 (ms)', r => s(r)?.small?.steady?.p99Ms, 'lower'],
    ['1,000 concurrent cold gets: median (ms)', r => s(r)?.concurrent?.totalMs.median, 'lower'],
    ['1,000 concurrent cold gets: slowest run (ms)', r => s(r)?.concurrent?.totalMs.max, 'lower'],
    [`peak RSS, streamed ${z}: requester (MiB)`, r => s(r)?.rss[BIG]?.requesterPeakMiB.max, 'lower'],
    [`peak RSS, streamed ${z}: provider (MiB)`, r => s(r)?.rss[BIG]?.providerPeakMiB.max, 'lower'],
    ['peak RSS, streamed 1 GiB: requester (MiB)', r => s(r)?.rss[GiB]?.requesterPeakMiB.max, 'lower'],
    ['peak RSS, streamed 1 GiB: provider (MiB)', r => s(r)?.rss[GiB]?.providerPeakMiB.max, 'lower']
  ]
}

function beforeAfterTable (after: CompareResult, before: CompareResult | undefined): string {
  const rows: string[][] = []
  for (const [what, pick, better] of figures(SYS)) {
    const a = pick(after)
    const b = before == null ? undefined : pick(before)
    if (a === undefined && b === undefined) continue
    const change = a === undefined || b === undefined || b === 0 ? '' : `${(a / b).toFixed(2)}× (${better} is better)`
    rows.push([what, b === undefined ? '–' : num(b), a === undefined ? '–' : num(a), change])
  }
  return table(['figure', 'before', 'after', 'after / before'], rows)
}

/** Before → after of every #14 figure, in each mode that has a run. */
export function beforeAfterSection (after: SpeedRuns, before: SpeedRuns): string {
  const parts: string[] = []
  for (const [mode, file, bfile] of [['shared', 'latest.json', 'before-14.json'], ['pinned', 'pinned.json', 'before-14-pinned.json']] as const) {
    const a = after[mode]
    const b = before[mode]
    if (a == null) {
      parts.push(`### ${mode === 'shared' ? 'Shared' : 'Pinned'} cores\n\nNot run (no bench/results/${file}).\n`)
      continue
    }
    const head = b == null
      ? `No baseline (bench/results/${bfile}): the after column alone.`
      : `Before: ${runName(b)} (${bfile})${b.quick ? '; a single quick run on a shared machine, so noisy' : ''}. After: ${runName(a)} (${file}).`
    parts.push(`### ${mode === 'shared' ? 'Shared' : 'Pinned'} cores\n\n${head} ${SYS}; medians, except "slowest run" and peak RSS (the highest repetition).\n\n${beforeAfterTable(a, b)}\n`)
  }
  return `## Before and after (issue #14)\n\n${parts.join('\n')}`
}

/** All of issue #14's sections, in order. */
export function speedSections (after: SpeedRuns, before: SpeedRuns): string {
  const modes = modesSection(after)
  return [modes, speedTargetsSection(after, before), beforeAfterSection(after, before)].filter(s => s !== '').join('\n') + '\n'
}
