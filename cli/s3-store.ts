/**
 * Opening the S3 store for `dstore global --store s3://…`, and `dstore verify --store s3://…`.
 * Every failure reaches the user as one line: the store maps S3's errors to typed dstore errors;
 * anything else that escapes (a malformed endpoint the SDK rejects, say) is wrapped here.
 */
import { DstoreError, createS3Store, type S3BlobStore } from '../src/index.js'
import { UsageError, formatBytes } from './output.js'
import type { S3StoreChoice } from './store-flags.js'

// The SDK warns once per process, on stderr, that releases from 2027 need Node 22. This
// build pins a release that runs on Node 20 (package.json), so for a dstore user the warning
// is noise, and it would break the CLI's one-line errors.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

/** Opens the S3 store `choice` names (a HEAD of the bucket, then old staging removed). */
export async function openS3Store (choice: S3StoreChoice, log?: (line: string) => void): Promise<S3BlobStore> {
  try {
    return await createS3Store({
      bucket: choice.bucket,
      prefix: choice.prefix,
      endpoint: choice.endpoint,
      region: choice.region,
      forcePathStyle: choice.forcePathStyle,
      log
    })
  } catch (err) {
    if (err instanceof DstoreError) {
      const where = `${choice.url}${choice.endpoint !== undefined ? ` at ${choice.endpoint}` : ''}`
      // The first request is the bucket's HEAD: not found there is the bucket itself.
      err.message = err.name === 'NotFoundError'
        ? `cannot use ${where}: the bucket ${choice.bucket} does not exist (or these credentials cannot see it)`
        : `cannot use ${where}: ${err.message}`
      throw err
    }
    throw new UsageError(`cannot use ${choice.url}: ${(err as Error)?.message ?? String(err)}`, 1)
  }
}

/** `dstore verify --store s3://…`: the same output as the fs store's verify, for the bucket. */
export async function verifyS3 (choice: S3StoreChoice, opts: { repair?: boolean, json?: boolean }): Promise<void> {
  const repair = opts.repair === true
  const store = await openS3Store(choice)
  let report
  try {
    report = await store.verify({
      repair,
      onProblem: (p) => {
        if (opts.json === true) return
        const done = !p.repaired ? '' : ({ corrupt: '; quarantined', outboard: '; outboard rewritten', 'orphan-outboard': '; removed', staging: '; removed' })[p.problem]
        process.stdout.write(`${p.problem}\t${p.cid?.toString() ?? p.key}\t${p.reason}${done}\n`)
      }
    })
  } finally {
    await store.close()
  }
  const bad = report.problems
  if (opts.json === true) {
    process.stdout.write(JSON.stringify({
      store: choice.url,
      ok: bad.length === 0,
      checked: report.checked,
      bytes: report.bytes,
      repair,
      bad: bad.map(p => ({ cid: p.cid?.toString() ?? null, key: p.key, size: p.size, problem: p.problem, reason: p.reason, repaired: p.repaired })),
      recovery: store.recovery
    }) + '\n')
  } else {
    const r = store.recovery
    if (r.uploadsAborted + r.objectsDeleted > 0) process.stdout.write(`opening the store removed staging left by interrupted puts: ${r.uploadsAborted} upload(s), ${r.objectsDeleted} object(s)\n`)
    process.stdout.write(`checked ${report.checked} value(s), ${formatBytes(report.bytes)}: ${bad.length === 0 ? 'all good' : `${bad.length} bad${repair ? ', repaired' : ''}`}\n`)
  }
  if (bad.length > 0) {
    process.stderr.write(`dstore: ${bad.length} problem(s) in ${choice.url}${repair ? ' (repaired: run verify again to confirm)' : ' (run with --repair to quarantine bad values, rewrite bad outboards and remove leftovers)'}\n`)
    process.exitCode = 1
  }
}
