/**
 * The body of a BLAKE3 hashing worker thread (see `worker.ts`, which starts it): computes the
 * chaining values of whole chunk groups in a range of a shared buffer and posts them back.
 * A file of its own, so a bundle of dstore can ship it beside itself (scripts/bundle.mjs).
 */
import { parentPort } from 'node:worker_threads'
import { blake3 } from './index.js'
import { OUT_LEN, CHUNK_LEN } from './interface.js'
import type { Job, Reply } from './worker.js'

const port = parentPort
if (port === null) throw new Error('hash-worker.js runs only as a worker thread')
port.on('message', (job: Job) => {
  if (job.crash === true) throw new Error('hash worker crash requested (test)')
  const t = performance.now()
  const groupLen = CHUNK_LEN * 2 ** job.groupLog
  const cvs = new Uint8Array(job.length / groupLen * OUT_LEN)
  blake3.groupCVs(new Uint8Array(job.buffer, job.offset, job.length), job.counter, job.groupLog, cvs, 0)
  const reply: Reply = { id: job.id, cvs, ms: performance.now() - t }
  port.postMessage(reply, [cvs.buffer])
})
