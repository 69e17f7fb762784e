/**
 * What `open` does to a store folder before serving it (docs/STORAGE.md, "Recovery"):
 *
 * - tmp/ holds only puts in progress, so at open every file there is provably an incomplete
 *   temp file: removed. Nothing else is ever deleted.
 * - A data file under blobs/ with no index entry (the index was lost or replaced, a crash
 *   between a put's rename and its commit, a delete interrupted before its unlink) is
 *   re-hashed: when its bytes hash to its name it is indexed again with a rebuilt outboard;
 *   when not, it is moved to quarantine/. With `reindex` false (`dstore verify` without
 *   `--repair`) it is only reported.
 * - An index entry whose data file is missing is dropped (with `dropMissing`), or left for
 *   verify to report.
 */
import { open as openFile, readdir, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { cidFromDigest } from '../../cid.js'
import type { IndexDb } from './index-db.js'
import { storage } from './io.js'
import { BLOB_NAME, SHARD_NAME, type FsLayout } from './layout.js'
import { KIND_FILE, type IndexRecord } from './records.js'
import { SLOT } from './put.js'
import { hashFile, parentsOf, quarantineFile, type FsVerifyProblem } from './verify.js'

/** What `open` found and did, for diagnostics and tests. */
export interface FsRecoveryReport {
  /** Leftover temp files of interrupted puts (everything in tmp/), removed. */
  tempFilesRemoved: number
  /** Data files without an index entry whose bytes hash to their name: indexed again. */
  filesReindexed: number
  /** Data files without an index entry whose bytes do not hash to their name: moved to quarantine/. */
  filesQuarantined: number
  /** Index entries whose data file was missing (external damage), dropped. */
  missingFilesDropped: number
}

export interface RecoverOptions {
  layout: FsLayout
  db: IndexDb
  /** Drop index entries whose data file is missing. */
  dropMissing: boolean
  /** Re-index (or quarantine) data files that have no index entry; false: only report them. */
  reindex: boolean
  /** The index was created by this open (it was new, or lost). */
  indexCreated: boolean
  log: (line: string) => void
}

/** Cleans and reconciles a store folder; returns the counts and the problems found. */
export async function recover (o: RecoverOptions): Promise<{ report: FsRecoveryReport, problems: FsVerifyProblem[] }> {
  const { layout, db } = o
  const report: FsRecoveryReport = { tempFilesRemoved: 0, filesReindexed: 0, filesQuarantined: 0, missingFilesDropped: 0 }
  const problems: FsVerifyProblem[] = []
  for (const name of await storage('list temp folder', async () => await readdir(layout.tmp))) {
    await storage('remove temp file', async () => { await rm(join(layout.tmp, name), { recursive: true, force: true }) })
    report.tempFilesRemoved++
  }

  const present = new Set<string>()
  const unindexed: string[] = []
  for (const shard of await storage('list blob folder', async () => await readdir(layout.blobs))) {
    if (!SHARD_NAME.test(shard)) continue
    for (const name of await storage('list blob shard', async () => await readdir(join(layout.blobs, shard)))) {
      if (!BLOB_NAME.test(name) || name.slice(0, 2) !== shard) continue
      const record = db.record(Buffer.from(name, 'hex'))
      if (record?.kind === KIND_FILE) present.add(name)
      else unindexed.push(name)
    }
  }
  if (unindexed.length > 0) {
    o.log(`store: ${unindexed.length} data file(s) have no index entry${o.indexCreated ? ' (the index was missing and has been created anew)' : ''}; ` +
      `re-hashing them to ${o.reindex ? 're-index those whose bytes match their name (about 1 s per GB)' : 'report them (nothing is changed)'}`)
    const buffer = new Uint8Array(SLOT)
    // Re-indexed entries are committed in batches: one synced commit per file cost ~3 ms, so a
    // lost index of many small files took far longer to rebuild than to hash. A crash loses
    // only the batch in progress (its files stay, unindexed, for the next open).
    const batch = new ReindexBatch(o.db)
    for (const hex of unindexed) {
      const problem = await reconcile(o, hex, buffer, batch)
      problems.push(problem)
      if (problem.repaired && problem.problem === 'unindexed') { report.filesReindexed++; present.add(hex) }
      if (problem.repaired && problem.problem === 'corrupt') report.filesQuarantined++
    }
    await batch.flush()
    const matching = problems.filter(p => p.problem === 'unindexed').length
    o.log(o.reindex
      ? `store: re-indexed ${report.filesReindexed} value(s) from their data files; moved ${report.filesQuarantined} file(s) whose bytes do not match their name to ${layout.quarantine}`
      : `store: ${matching} data file(s) match their name and can be re-indexed, ${unindexed.length - matching} do not (run \`dstore verify --repair\` to re-index and quarantine)`)
  }
  if (o.indexCreated && unindexed.length > 0) {
    o.log('store: values small enough to be stored inside the index (64 KiB by default) were lost with it; put them again')
  }

  const missing: Buffer[] = []
  for (const { key, record } of db.entries()) {
    // Without dropMissing the entry stays, and verify reports its missing file itself.
    if (o.dropMissing && record.kind === KIND_FILE && !present.has(key.toString('hex'))) {
      missing.push(Buffer.from(key))
      problems.push({
        cid: cidFromDigest(new Uint8Array(key)),
        size: record.size,
        kind: 'file',
        problem: 'missing',
        reason: 'data file missing (its index entry was dropped when the store was opened)',
        repaired: true
      })
    }
  }
  if (missing.length > 0) {
    await db.remove(missing, 'drop index entries without data')
    report.missingFilesDropped = missing.length
    o.log(`store: dropped ${missing.length} index entr${missing.length === 1 ? 'y' : 'ies'} whose data file is missing`)
  }
  return { report, problems }
}

/** Re-indexed entries waiting for their commit: at most REINDEX_BATCH entries or REINDEX_BATCH_BYTES of payload. */
const REINDEX_BATCH = 1024
const REINDEX_BATCH_BYTES = 16 << 20

class ReindexBatch {
  private entries: Array<{ key: Buffer, record: IndexRecord, payload: Buffer }> = []
  private bytes = 0
  constructor (private readonly db: IndexDb) {}

  async add (key: Buffer, record: IndexRecord, payload: Buffer): Promise<void> {
    this.entries.push({ key, record, payload })
    this.bytes += payload.length
    if (this.entries.length >= REINDEX_BATCH || this.bytes >= REINDEX_BATCH_BYTES) await this.flush()
  }

  async flush (): Promise<void> {
    if (this.entries.length === 0) return
    const entries = this.entries
    this.entries = []
    this.bytes = 0
    await this.db.putMany(entries, 're-index data files')
  }
}

/** Re-hashes one unindexed data file; indexes it again (in `batch`) or quarantines it (with `reindex`). */
async function reconcile (o: RecoverOptions, hex: string, buffer: Uint8Array, batch: ReindexBatch): Promise<FsVerifyProblem> {
  const key = Buffer.from(hex, 'hex')
  const path = o.layout.blob(hex)
  const handle: FileHandle = await storage('open data file', async () => await openFile(path, 'r'))
  let result
  let size: number
  try {
    size = (await storage('stat data file', async () => await handle.stat())).size
    result = await hashFile(handle, size, buffer)
  } finally {
    await handle.close().catch(() => {})
  }
  const cid = cidFromDigest(new Uint8Array(key))
  if (key.equals(result.root)) {
    if (o.reindex) await batch.add(key, { kind: KIND_FILE, pinned: true, size }, parentsOf(result))
    return { cid, size, kind: 'file', problem: 'unindexed', reason: 'data file has no index entry; its bytes match its name', repaired: o.reindex }
  }
  if (o.reindex) await quarantineFile(o.layout, path, hex)
  return { cid, size, kind: 'file', problem: 'corrupt', reason: 'data file has no index entry and its bytes do not hash to its name', repaired: o.reindex }
}
