import { strict as assert } from 'node:assert'
import { readFileSync } from 'node:fs'
import { buildWasm, generateWat, outputPath, renderModule } from '../scripts/build-blake3-wasm.js'
import { wasmBinary } from '../src/core/blake3/wasm.js'

describe('blake3 wasm build', () => {
  it('regenerates src/core/blake3/wasm-binary.ts byte for byte from its generator', async () => {
    const committed = readFileSync(outputPath(), 'utf8')
    const regenerated = renderModule(await buildWasm())
    assert.equal(regenerated, committed, 'wasm-binary.ts is stale: run `npx tsc -p . && node dist/scripts/build-blake3-wasm.js`')
  })

  it('ships exactly the binary wabt assembles from the generated WAT', async () => {
    assert.deepEqual(Buffer.from(wasmBinary), Buffer.from(await buildWasm()))
  })

  it('generates a module with 128-bit SIMD and the three exports the glue calls', () => {
    const wat = generateWat()
    assert.match(wat, /i8x16\.shuffle/)
    assert.match(wat, /v128\.load/)
    for (const name of ['subtree', 'groups', 'parent', 'memory']) assert.match(wat, new RegExp(`\\(export "${name}"\\)`))
  })

  it('writes to the source tree, not to dist', () => {
    assert.match(outputPath(), /src[\\/]core[\\/]blake3[\\/]wasm-binary\.ts$/)
    assert.doesNotMatch(outputPath(), /[\\/]dist[\\/]/)
  })
})
