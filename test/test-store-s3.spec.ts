/**
 * The S3 store against a real S3 server (Swift + s3api, test/s3-server.ts): the shared
 * compliance suite. The sizes, crash safety, corruption and verify are in
 * test-store-s3-cases.spec.ts (two files, so each stays well under 40 s).
 */
import { createS3Store } from '../src/core/store/s3.js'
import { runBlobStoreCompliance } from './store-compliance.js'
import { config, useS3Server } from './s3-store-fixture.js'

describe('s3 store (Swift s3api)', function () {
  this.timeout(60_000)

  useS3Server()

  runBlobStoreCompliance('s3 store', async () => ({ store: await createS3Store(config()) }), { verifiable: true })
})
