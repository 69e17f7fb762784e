/** The S3 section of docs/BENCHMARKS.md, from bench/results/s3.json (`bench/s3.ts`). */
import type { S3BenchResult } from '../s3.js'
import { fig, num, table } from './report.js'

export function s3Section (r: S3BenchResult): string {
  const ok = (pass: boolean): string => pass ? 'met' : '**missed**'
  const rows: string[][] = []
  for (const [mib, t] of Object.entries(r.throughput)) {
    rows.push([`put ${mib} MiB: Local → Global on S3`, `${fig(t.s3.put)} MB/s`, '', ''])
    rows.push([`put ${mib} MiB: Local → Global on fs`, `${fig(t.fs.put)} MB/s`, '', ''])
    rows.push([`put ${mib} MiB: the SDK straight to the server (lib-storage Upload)`, `${fig(t.sdk.put)} MB/s`, '', ''])
    rows.push([`put ${mib} MiB: Global on S3 / SDK`, `${num(t.putRatio)}×`, '≥ 0.8×', ok(t.putRatio >= 0.8)])
    rows.push([`cold get ${mib} MiB: Global on S3 → Local`, `${fig(t.s3.get)} MB/s`, '', ''])
    rows.push([`cold get ${mib} MiB: Global on fs → Local`, `${fig(t.fs.get)} MB/s`, '', ''])
    rows.push([`get ${mib} MiB: the SDK straight from the server (GetObject)`, `${fig(t.sdk.get)} MB/s`, '', ''])
    rows.push([`cold get ${mib} MiB: Global on S3 / SDK`, `${num(t.getRatio)}×`, '≥ 0.8×', ok(t.getRatio >= 0.8)])
  }
  rows.push([`peak RSS of the Global on S3, ${r.rss.sizeMiB} MiB put (a freshly started Global: ${num(r.rss.baseMiB)} MiB once up)`, `${num(r.rss.putPeakMiB)} MiB`, '≤ 200 MiB', ok(r.rss.putPeakMiB <= 200)])
  rows.push([`peak RSS of the Global on S3, ${r.rss.sizeMiB} MiB get`, `${num(r.rss.getPeakMiB)} MiB`, '≤ 200 MiB', ok(r.rss.getPeakMiB <= 200)])
  rows.push(['first byte of the 256 MiB value: curl → Global on S3 (HTTP gateway)', `${fig(r.ttfb.s3Http)} ms`, '', ''])
  rows.push(['first byte: curl → Global on fs', `${fig(r.ttfb.fsHttp)} ms`, '', ''])
  rows.push(['first byte: the SDK, GetObject until its first body chunk', `${fig(r.ttfb.sdk)} ms`, '', ''])
  return `\n## S3: a Global on the S3 store (\`npm run bench -- --only s3\`${r.quick ? ' --quick' : ''}, ${r.date.slice(0, 10)})\n\n` +
    `Every process on 127.0.0.1 of one ${r.machine.cpus}-core machine (${r.machine.model}; load ${r.machine.load.map(l => l.toFixed(2)).join(' ')} at the end; ` +
    'the machine is shared, so figures move from run to run): the S3 server is OpenStack Swift with s3api (test/s3-server.ts: four Swift processes and memcached, 1-replica rings, data under /tmp), ' +
    'the Global is the real CLI (`dstore global --store s3://… --s3-endpoint … --s3-path-style`, or on its fs store), and the Local is a separate process with no cache (every get is cold for dstore: ' +
    'a Global on S3 keeps no values), putting and getting over libp2p (TLS). The SDK figure is @aws-sdk/client-s3 and lib-storage in the bench process, the same bytes straight to the server. ' +
    'A dstore put also hashes (BLAKE3 and the outboard) and writes the outboard object; a Local\'s put names its CID, so the multipart upload goes to the final key and is completed only once verified (without a CID, to staging and then a server-side copy); a dstore get is the value and its outboard, encoded by the Global and verified by the Local. ' +
    `MB/s are 10^6 bytes per second; median (min–max). Peak RSS is the Global process's VmHWM, reset before each transfer.\n\n` +
    table(['', 'measured', 'target', ''], rows) + '\n' + reading(r)
}

/**
 * What the throughput figures say: a Global on S3 moves each byte over two legs (server to
 * Global, Global to Local), and if they did not overlap at all its rate would be
 * 1 / (1 / SDK + 1 / fs), the two legs' own rates. Beside that bound the measured rate shows how
 * much the legs overlap, on a machine whose cores the S3 server shares.
 */
function reading (r: S3BenchResult): string {
  const serial = (a: number, b: number): number => 1 / (1 / a + 1 / b)
  const lines = Object.entries(r.throughput).map(([mib, t]) => {
    const put = serial(t.sdk.put.median, t.fs.put.median)
    const get = serial(t.sdk.get.median, t.fs.get.median)
    return `${mib} MiB: put ${num(t.s3.put.median)} MB/s measured, ${num(put)} if the two legs did not overlap; get ${num(t.s3.get.median)} measured, ${num(get)} without overlap`
  })
  return '\nReading the figures: a byte through a Global on S3 travels two legs, the S3 server to the Global (the SDK row) and the Global to the Local ' +
    '(the fs row, the same libp2p path from a local disk), and every process shares the same ' +
    `${r.machine.cpus} cores with the S3 server. With no overlap between the legs, the rate would be 1 / (1/SDK + 1/fs): ${lines.join('; ')}. ` +
    'A rate above that bound means the legs overlap (a put\'s parts upload while the next bytes arrive); one below it means the two legs cost more together than apart ' +
    '(they compete for the cores, and a Global on S3 also GETs the outboard and encodes each group; the split is not measured here). ' +
    'Against the 0.8× target, both fall short on this machine. The peak RSS of a fresh Global includes the process once up (row above) and a put\'s part buffers (concurrency + 1 = 5 of 8 MiB); the rest is not broken down here.\n\n' +
    'Why the 0.8× target is missed (profiled after this run, 2026-12-02): the machine is CPU-bound, not waiting on S3. During a get both cores ran at 180–200% for the whole transfer, and the Global was idle only 2–20% of the time (garbage collection 17–38%, TLS writes to the Local 9–30%). CPU per MiB, medians of 3: the SDK alone 1.8–2.7 ms (get) and 3.1–3.7 ms (put); a Global on fs 2–4.4 and 5.3–7.7; a Global on S3 mostly 5–8 and 6–10, about the SDK\'s work plus the fs Global\'s. A Local\'s put names its CID, so no server-side copy is made (the request counts show 8 MiB UploadParts and no CopyObject). An 8 MiB read-ahead on each GET body and more concurrent ranged GETs would only move CPU between processes: the read-ahead measured no better (64 MiB get 86–90 MB/s either way) and was reverted. What would help: less garbage on the get path, unsigned UploadPart payloads (12–15% of a put is SHA-256 payload signing; a security choice, since our BLAKE3 check catches corruption on read anyway), and a test on more than 2 cores, where Swift, the Global and the Local do not share them.\n'
}
