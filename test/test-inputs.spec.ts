/**
 * Bad inputs, everywhere a caller can pass them: keys in every wrong shape (to the API of a
 * Local and of a Global, and to every CLI command that takes one), put sources that are not
 * bytes, and files that cannot be read or written. Each must get one clear error — the API an
 * InvalidCIDError (or TypeError for a source), the CLI exit status 1 and exactly one
 * `dstore: …` line — nothing may be stored or written, and the Global keeps serving.
 *
 * One in-process Global serves the whole file; the CLI runs as the real binary in child
 * processes (about 0.3 s each, two at a time), so the CLI cases are batched.
 */
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { statSync } from 'node:fs'
import { chmod, chown, copyFile, mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { dirname, join, resolve as resolvePath } from 'node:path'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { identity } from 'multiformats/hashes/identity'
import { base32upper } from 'multiformats/bases/base32'
import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'
import { base64 } from 'multiformats/bases/base64'
import { base16 } from 'multiformats/bases/base16'
import { InvalidCIDError, cidOfBytes, createGlobal, createLocal, type GlobalPeer, type LocalPeer } from '../src/index.js'
import { INLINE_MAX } from '../src/protocol/constants.js'
import { collect, pseudoRandom } from './helpers.js'
import { Cleanup, KiB, assertBytes } from './net.js'
import { BIN, ONE_LINE, blake3Cid, cleanEnv, dstore, type Result } from './proc.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

/** A stored value and its key, and keys in every wrong shape (all strings, so the CLI takes them too). */
const value = enc('the one value these tests store first')
const good = cidOfBytes(value)
const goodText = good.toString()
const badKeys: Array<[string, string]> = [
  ['an empty string', ''],
  ['whitespace only', ' \t\n '],
  ['random text', 'hello world'],
  ['a word that looks like a key', 'bafk-not-a-cid'],
  ['a CIDv0 (Qm…)', CID.createV0(Digest.create(sha256.code, new Uint8Array(32).fill(7))).toString()],
  ['a CIDv1 raw sha2-256 (bafkrei…)', CID.createV1(0x55, Digest.create(sha256.code, new Uint8Array(32).fill(7))).toString()],
  ['a CIDv1 with the dag-pb codec', CID.createV1(0x70, good.multihash).toString()],
  ['a CIDv1 with the dag-cbor codec', CID.createV1(0x71, good.multihash).toString()],
  ['an identity multihash', CID.createV1(0x55, Digest.create(identity.code, good.multihash.digest)).toString()],
  ['a blake3 digest of 16 bytes', CID.createV1(0x55, Digest.create(0x1e, good.multihash.digest.slice(0, 16))).toString()],
  ['a blake3 digest of 64 bytes', CID.createV1(0x55, Digest.create(0x1e, new Uint8Array(64).fill(1))).toString()],
  ['a key truncated by 5 characters', goodText.slice(0, -5)],
  ['a key truncated to 20 characters', goodText.slice(0, 20)],
  ['a key with characters outside base32', goodText.slice(0, -3) + '018'],
  ['a bad multibase prefix', '!' + goodText.slice(1)],
  ['an unknown multibase prefix', 'x' + goodText.slice(1)],
  ['a key with trailing garbage', goodText + 'xyz'],
  ['a key followed by another word', `${goodText} extra`],
  ['a key with a NUL at the end', goodText + '\0'],
  ['a key with a newline inside', goodText.slice(0, 10) + '\n' + goodText.slice(10)],
  ['two keys glued together', goodText + goodText],
  ['a megabyte of text', 'b'.repeat(1 << 20)]
]
/** Other spellings of the same key, which are accepted (the tests say so, so it stays a decision). */
const sameKey: Array<[string, string]> = [
  ['base58btc (z…)', good.toString(base58btc)],
  ['base32upper (B…)', good.toString(base32upper)],
  ['base64 (m…)', good.toString(base64)],
  ['base16 (f…)', good.toString(base16)],
  ['base36 (k…)', good.toString(base36)],
  ['the base32 body in upper case after a lower-case b (base32 decodes either case)', 'b' + goodText.slice(1).toUpperCase()],
  ['surrounding whitespace and a trailing newline (as $(…) or a file line may leave)', `  ${goodText}\n`]
]
/** Keys that are not strings, for the API. */
const badObjects: Array<[string, unknown]> = [
  ['null', null],
  ['undefined', undefined],
  ['a number', 42],
  ['NaN', NaN],
  ['a bigint', 42n],
  ['a boolean', true],
  ['the key bytes as a Uint8Array', good.bytes.slice()],
  ['the digest as a Uint8Array', good.multihash.digest.slice()],
  ['an empty object', {}],
  ['an array holding the key', [goodText]],
  ['a CID object with the dag-pb codec', CID.createV1(0x70, good.multihash)],
  ['a CIDv0 object', CID.createV0(Digest.create(sha256.code, new Uint8Array(32)))],
  ['a Symbol', Symbol('key')]
]

function isInvalidCID (err: unknown): true {
  assert.ok(err instanceof InvalidCIDError, `expected InvalidCIDError, got ${String((err as Error)?.name)}: ${String((err as Error)?.message)}`)
  assert.equal(err.name, 'InvalidCIDError')
  assert.equal(err.code, 'ERR_INVALID_CID')
  assert.ok(err.message.length > 0 && err.message.length < 300 && !err.message.includes('\n'), `one short line: ${JSON.stringify(err.message)}`)
  return true
}

async function drain (source: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0
  for await (const part of source) n += part.length
  return n
}

async function drain2 (source: AsyncIterable<unknown>): Promise<number> {
  let n = 0
  for await (const _ of source) n++
  return n
}

/** Every API call that takes a key, on a Local and on a Global. */
function keyCalls (local: LocalPeer, global: GlobalPeer): Array<[string, (key: any) => Promise<unknown>]> {
  return [
    ['Local.get', async k => await local.get(k)],
    ['Local.cat', async k => await drain(local.cat(k))],
    ['Local.stat', async k => await local.stat(k)],
    ['Local.has', async k => await local.has(k)],
    ['Local.delete', async k => await local.delete(k)],
    ['Local.missing', async k => await local.missing([good, k])],
    ['Global.cat', async k => await drain(global.cat(k))],
    ['Global.stat', async k => await global.stat(k)],
    ['Global.has', async k => await global.has(k)],
    ['Global.delete', async k => await global.delete(k)]
  ]
}

describe('bad inputs', function () {
  const c = new Cleanup()
  let global: GlobalPeer
  let local: LocalPeer

  before(async function () {
    global = await c.global(await c.dir('dstore-inputs-repo-'))
    local = await c.local(global)
    await local.ready()
    assert.ok((await local.put(value)).equals(good))
  })

  after(async function () { await c.run() })

  async function storedKeys (): Promise<Set<string>> {
    const keys = new Set<string>()
    for await (const e of global.list()) keys.add(e.cid.toString())
    return keys
  }

  describe('API: keys', function () {
    it('every wrong string shape is an InvalidCIDError from every call of a Local and a Global, and nothing goes over the wire', async function () {
      let checked = 0
      for (const [what, key] of badKeys) {
        for (const [call, fn] of keyCalls(local, global)) {
          await assert.rejects(fn(key), isInvalidCID, `${call}(${what})`)
          checked++
        }
      }
      assert.equal(checked, badKeys.length * 10)
      assert.ok(await global.has(good), 'nothing was deleted')
      // Refused before any request: a Local whose Global is gone (it would wait 20 s for it,
      // then fail with GlobalUnreachableError) still refuses every bad key at once.
      const gone = await createGlobal({ repo: await c.dir('dstore-inputs-gone-'), sync: false })
      const addrs = gone.multiaddrs
      await gone.stop()
      const offline = await c.local(addrs, { connectTimeout: 20_000 })
      for (const [what, key] of badKeys) {
        for (const [call, fn] of keyCalls(offline, global).filter(([name]) => name.startsWith('Local.'))) {
          await assert.rejects(fn(key), isInvalidCID, `offline ${call}(${what})`)
        }
      }
    })

    it('keys that are not strings (null, numbers, bytes, objects, a CID of another codec) are InvalidCIDErrors too', async function () {
      for (const [what, key] of badObjects) {
        for (const [call, fn] of keyCalls(local, global)) {
          await assert.rejects(fn(key), isInvalidCID, `${call}(${what})`)
        }
      }
      assert.ok(await global.has(good))
    })

    it('the message says what was wrong and cuts a huge input short', async function () {
      const messages = new Map<string, string>()
      for (const [what, key] of badKeys) {
        try { await local.stat(key); assert.fail(`${what} was accepted`) } catch (err) { isInvalidCID(err); messages.set(what, (err as Error).message) }
      }
      assert.match(messages.get('an empty string')!, /empty/i)
      assert.match(messages.get('a CIDv0 (Qm…)')!, /CIDv0/)
      assert.match(messages.get('a CIDv1 raw sha2-256 (bafkrei…)')!, /blake3/)
      assert.match(messages.get('a CIDv1 with the dag-pb codec')!, /codec 0x70/)
      assert.match(messages.get('a blake3 digest of 16 bytes')!, /16 bytes/)
      assert.match(messages.get('random text')!, /"hello world" is not a CID/)
      assert.ok(messages.get('a megabyte of text')!.length < 300)
    })

    it('other spellings of a valid key name the same value', async function () {
      for (const [what, key] of sameKey) {
        assertBytes(await local.get(key), value, what)
        assert.equal((await local.stat(key)).cid.toString(), goodText, `${what}: printed canonically`)
        assert.ok(await global.has(key), what)
        assert.deepEqual(await local.missing([key]), [], what)
      }
    })
  })

  describe('API: put sources', function () {
    // Before the fix a Local stored a string's characters (or numbers) as zero bytes under the
    // CID of those zeros; the stores refused them only with an unrelated TypeError.
    const sources: Array<[string, () => unknown]> = [
      ['null', () => null],
      ['undefined', () => undefined],
      ['a number', () => 42],
      ['a string', () => 'abc'],
      ['a plain object', () => ({})],
      ['an ArrayBuffer', () => new ArrayBuffer(3)],
      ['an array of numbers', () => [1, 2, 3]],
      ['an array of strings', () => ['ab', 'c']],
      ['an async generator of strings', () => (async function * () { yield 'abc' })()],
      ['bytes, then a string past the inline limit (a streamed put)', () => (async function * () { yield pseudoRandom(INLINE_MAX + KiB, 5); yield 'abc' })()]
    ]
    for (const [who, put] of [['Local', (s: unknown) => local.put(s as any)], ['Global', (s: unknown) => global.put(s as any)]] as const) {
      it(`${who}.put refuses anything but bytes with a TypeError saying so, and stores nothing`, async function () {
        const before = await storedKeys()
        for (const [what, make] of sources) {
          await assert.rejects(put(make()), (err: Error) => {
            assert.equal(err.name, 'TypeError', `${what}: ${err.message}`)
            assert.match(err.message, /^A put source must (be a Uint8Array or an \(async\) iterable of Uint8Arrays|yield Uint8Arrays), got /, what)
            return true
          }, what)
        }
        assert.deepEqual(await storedKeys(), before, 'nothing new is stored')
        for (const n of [2, 3]) assert.equal(await global.has(cidOfBytes(new Uint8Array(n))), false, `no ${n} zero bytes stored`)
        // The Global still serves this Local.
        const data = pseudoRandom(INLINE_MAX + 3 * KiB, who.length)
        const cid = await local.put(data)
        assertBytes(await collect(global.cat(cid)), data)
      })
    }
  })

  describe('API: arguments', function () {
    const isArgumentError = (what: string) => (err: Error & { code?: string }): boolean => {
      assert.equal(err.name, 'ArgumentError', `${what}: got ${err.name}: ${err.message}`)
      assert.equal(err.code, 'ERR_INVALID_ARGUMENT', what)
      return true
    }

    it('a progress callback that throws ends the call with an ArgumentError carrying its error, at once, and the Local keeps working', async function () {
      const big = pseudoRandom(3 * INLINE_MAX, 11)
      const cid = await global.put(big) // on Global only: the Local's get goes to Global
      const mine = new Error('my callback broke')
      const onProgress = (): void => { throw mine }
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['get', async () => await local.get(cid, { onProgress })],
        ['cat', async () => await drain(local.cat(cid, { onProgress }))],
        ['put (streamed)', async () => await local.put((async function * () { yield pseudoRandom(2 * INLINE_MAX, 12) })(), { onProgress })],
        ['put (bytes)', async () => await local.put(pseudoRandom(1000, 13), { onProgress })]
      ]
      for (const [what, call] of calls) {
        const t0 = Date.now()
        await assert.rejects(call(), (err: Error) => isArgumentError(what)(err) && (err.cause === mine || assert.fail(`${what}: cause`)), what)
        assert.ok(Date.now() - t0 < 5000, `${what} failed at once, not after a retry and a timeout`)
      }
      assert.equal(await local.cache.has(cid), false, 'a get that failed caches nothing')
      assertBytes(await local.get(cid), big)
    })

    it('a progress callback that throws fails only its own caller of a shared fetch', async function () {
      const big = pseudoRandom(3 * INLINE_MAX, 14)
      const cid = await global.put(big)
      const bad = local.get(cid, { onProgress: () => { throw new Error('mine') } })
      const good = local.get(cid)
      await assert.rejects(bad, isArgumentError('the throwing caller'))
      assertBytes(await good, big)
    })

    it('options of the wrong type (a signal that is not an AbortSignal, an onProgress that is not a function, options that are not an object) are ArgumentErrors from every call', async function () {
      const bads: Array<[string, unknown]> = [
        ['{ signal: "x" }', { signal: 'x' }],
        ['{ signal: {} }', { signal: {} }],
        ['{ onProgress: 5 }', { onProgress: 5 }],
        ['options "x"', 'x'],
        ['options null', null]
      ]
      for (const [what, options] of bads) {
        const o = options as any
        const calls: Array<[string, () => Promise<unknown>]> = [
          ['get', async () => await local.get(good, o)],
          ['cat', async () => await drain(local.cat(good, o))],
          ['put', async () => await local.put(value, o)],
          ['has', async () => await local.has(good, o)],
          ['stat', async () => await local.stat(good, o)],
          ['missing', async () => await local.missing([good], o)],
          ['delete', async () => await local.delete(cidOfBytes(enc('never stored')), o)],
          ['list', async () => await drain2(local.list(o))],
          ['ready', async () => await local.ready(o)]
        ]
        for (const [call, fn] of calls) await assert.rejects(fn(), isArgumentError(`${call}(${what})`))
      }
      assert.ok(await global.has(good))
    })

    it('missing() of something that is not an array is an ArgumentError', async function () {
      for (const bad of ['x', goodText, 42, null, { length: 1 }]) {
        await assert.rejects(local.missing(bad as any), isArgumentError(`missing(${String(bad)})`))
      }
    })

    it('createLocal refuses bad options with an ArgumentError before it dials: a global that is not a multiaddr, a repo that is a file, negative or non-integer timeouts and sizes', async function () {
      const file = join(await c.dir('dstore-inputs-file-'), 'a-file')
      await writeFile(file, 'not a folder')
      const ok = { global: global.multiaddrs }
      const bads: Array<[string, unknown]> = [
        ['no options', undefined],
        ['global: 123', { global: 123 }],
        ['global: {}', { global: {} }],
        ['global: []', { global: [] }],
        ['global: "not a multiaddr"', { global: 'not a multiaddr' }],
        ['global: [ok, 7]', { global: [global.multiaddrs[0], 7] }],
        ['repo: a file', { ...ok, repo: file }],
        ['repo: 5', { ...ok, repo: 5 }],
        ['connectTimeout: -1', { ...ok, connectTimeout: -1 }],
        ['connectTimeout: 0', { ...ok, connectTimeout: 0 }],
        ['connectTimeout: NaN', { ...ok, connectTimeout: NaN }],
        ['connectTimeout: "10"', { ...ok, connectTimeout: '10' }],
        ['requestTimeout: -5', { ...ok, requestTimeout: -5 }],
        ['cacheSize: -1', { ...ok, cacheSize: -1 }],
        ['cacheSize: 1.5', { ...ok, cacheSize: 1.5 }],
        ['encryption: "tls"', { ...ok, encryption: 'tls' }],
        ['encryption: []', { ...ok, encryption: [] }],
        ['encryption: ["ssl"]', { ...ok, encryption: ['ssl'] }]
      ]
      for (const [what, options] of bads) {
        await assert.rejects(async () => { const l = await createLocal(options as any); await l.stop() }, isArgumentError(what))
      }
      assert.equal(await readFile(file, 'utf8'), 'not a folder', 'the file is untouched')
    })
  })

  describe('CLI', function () {
    let work: string
    let env: Record<string, string>

    before(async function () {
      work = await c.dir('dstore-inputs-work-')
      // No repo with a global.addr: the Global is named by DSTORE_GLOBAL.
      env = { DSTORE_REPO: join(work, 'no-repo'), DSTORE_GLOBAL: global.multiaddrs[0] }
    })

    /** Runs the commands two at a time (there are two cores). */
    async function runAll (runs: string[][], opts: { env?: Record<string, string> } = {}): Promise<Result[]> {
      const out: Result[] = []
      for (let i = 0; i < runs.length; i += 2) out.push(...await Promise.all(runs.slice(i, i + 2).map(async args => await dstore(args, { env: opts.env ?? env }))))
      return out
    }

    function oneError (r: Result, what: string, pattern?: RegExp): void {
      assert.equal(r.code, 1, `${what}: exit status (stderr: ${r.stderr})`)
      assert.equal(r.out, '', `${what}: nothing on stdout`)
      assert.match(r.stderr, ONE_LINE, `${what}: exactly one dstore: line`)
      if (pattern != null) assert.match(r.stderr, pattern, what)
    }

    it('a key in every wrong shape: get, and in turn cat, stat, has and rm, exit 1 with one line naming the problem', async function () {
      const others = ['cat', 'stat', 'has', 'rm']
      const runs: string[][] = []
      const names: string[] = []
      // An argument cannot hold a NUL, nor be longer than 128 KiB (Linux): those two are API-only.
      const keys = badKeys.filter(([, key]) => !key.includes('\0') && key.length < 4096)
      assert.equal(keys.length, badKeys.length - 2)
      for (const [i, [what, key]] of keys.entries()) {
        const other = others[i % others.length]
        runs.push(['get', key], other === 'has' || other === 'rm' ? [other, goodText, key] : [other, key])
        names.push(`get ${what}`, `${other} ${what}`)
      }
      const results = await runAll(runs)
      for (const [i, r] of results.entries()) oneError(r, names[i], /CID/)
      assert.ok(await global.has(good), 'rm deleted nothing: every key is checked before any is deleted')
    })

    it('other spellings of the key are accepted and printed in the canonical form', async function () {
      const results = await runAll(sameKey.flatMap(([, key]) => [['stat', '--json', key], ['has', '--json', key]]))
      for (const [i, r] of results.entries()) {
        const [what] = sameKey[Math.floor(i / 2)]
        assert.equal(r.code, 0, `${what}: ${r.stderr}`)
        assert.deepEqual(JSON.parse(r.out), i % 2 === 0 ? { cid: goodText, size: value.length } : [{ cid: goodText, present: true }], what)
      }
    })

    it('a bad key fails at once, before looking for the Global (none is reachable here)', async function () {
      const port = await new Promise<number>((resolve, reject) => {
        const s = createServer()
        s.on('error', reject)
        s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => { resolve(p) }) })
      })
      const nowhere = { DSTORE_REPO: join(work, 'no-repo'), DSTORE_GLOBAL: `/ip4/127.0.0.1/tcp/${port}/p2p/${global.peerId}` }
      const results = await runAll([['get', 'hello', '-o', join(work, 'never.bin')], ['rm', goodText, 'Qm']], { env: nowhere })
      for (const r of results) oneError(r, 'bad key, no Global', /is not a CID/)
      assert.ok(!(await readdir(work)).includes('never.bin'))
    })

    describe('files', function () {
      let inputs: string
      before(async function () {
        inputs = join(work, 'inputs')
        await mkdir(join(inputs, 'a-dir'), { recursive: true })
        await writeFile(join(inputs, 'a-file'), 'just a file')
        await symlink(join(inputs, 'nowhere'), join(inputs, 'dangling'))
      })

      it('put of inputs that cannot be read: one line each naming it, exit 1, only the readable one stored', async function () {
        const bad = [join(inputs, 'missing'), join(inputs, 'a-dir'), join(inputs, 'dangling'), join(inputs, 'a-file', 'inside-a-file'), '']
        const ok = join(inputs, 'ok.txt')
        const okValue = `readable ${Date.now()}`
        await writeFile(ok, okValue)
        const before = await storedKeys()
        const [all, dir] = await runAll([['put', ...bad.slice(0, 3), ok, ...bad.slice(3)], ['put', join(inputs, 'a-dir')]])
        assert.equal(all.code, 1, all.stderr)
        assert.equal(all.out, blake3Cid(enc(okValue)) + '\n')
        const lines = all.stderr.split('\n')
        assert.equal(lines.pop(), '')
        assert.equal(lines.length, bad.length, all.stderr)
        for (const [i, input] of bad.entries()) {
          assert.match(lines[i], /^dstore: /)
          assert.ok(lines[i].includes(input === '' ? '""' : input), `${lines[i]} names ${input}`)
        }
        assert.match(lines[1], /is a directory/)
        assert.match(lines[2], /no such file/)
        assert.match(lines[3], /not a directory/)
        assert.match(lines[4], /empty file name/)
        oneError(dir, 'put a directory', /cannot put .*a-dir: it is a directory/)
        const after = await storedKeys()
        assert.deepEqual([...after].filter(k => !before.has(k)), [blake3Cid(enc(okValue))].filter(k => !before.has(k)))
      })

      it('put of a file without read permission (as an unprivileged user when run as root): exit 1, one line, nothing stored', async function () {
        const dir = join(work, 'private')
        await mkdir(dir)
        await chmod(work, 0o755)
        await chmod(dir, 0o755)
        const file = join(dir, 'secret')
        const secret = `secret ${Date.now()}`
        await writeFile(file, secret)
        await chmod(file, 0o000)
        const asRoot = process.getuid?.() === 0
        // The client keeps its identity in its repo: give the unprivileged user one of its own.
        const repo = join(work, 'nobody-repo')
        await mkdir(repo)
        if (asRoot) await chown(repo, 65534, 65534)
        // The unprivileged user must be able to run node: one installed in a private folder
        // (CI's Node 24 lives in a mode-0700 temp folder) is copied next to the test files first.
        const nodeBin = asRoot && !executableByOthers(process.execPath) ? join(work, 'node') : process.execPath
        if (nodeBin !== process.execPath) { await copyFile(process.execPath, nodeBin); await chmod(nodeBin, 0o755) }
        const r = await new Promise<Result>((resolve, reject) => {
          const child = spawn(nodeBin, [BIN, 'put', file], { env: cleanEnv({ ...env, DSTORE_REPO: repo }), stdio: ['ignore', 'pipe', 'pipe'], ...(asRoot ? { uid: 65534, gid: 65534 } : {}) })
          const out: Buffer[] = []
          const err: Buffer[] = []
          child.stdout.on('data', (b: Buffer) => out.push(b))
          child.stderr.on('data', (b: Buffer) => err.push(b))
          child.on('error', reject)
          child.on('close', (code, signal) => { const stdout = Buffer.concat(out); resolve({ code, signal, stdout, out: stdout.toString(), stderr: Buffer.concat(err).toString() }) })
        })
        oneError(r, 'unreadable file', /permission denied/)
        assert.ok(r.stderr.includes(file), r.stderr)
        assert.equal(await global.has(blake3Cid(enc(secret))), false)
      })

      it('-o targets that cannot be written, and gets that fail: one line each, no file or temp file left, an existing file untouched', async function () {
        const out = join(work, 'out')
        await mkdir(join(out, 'sub'), { recursive: true })
        await writeFile(join(out, 'keep.bin'), 'keep me')
        await symlink(join(out, 'sub'), join(out, 'link-to-sub'))
        const absent = blake3Cid(enc(`never stored ${Date.now()}`))
        const cases: Array<[string, string, string, RegExp]> = [
          ['into a folder that does not exist', goodText, join(out, 'no-such-folder', 'x.bin'), /folder .*no-such-folder does not exist/],
          ['onto a directory', goodText, join(out, 'sub'), /it is a directory/],
          ['onto a symlink to a directory', goodText, join(out, 'link-to-sub'), /it is a directory/],
          ['a path ending in /', goodText, join(out, 'sub') + '/', /names a folder/],
          ['under a file', goodText, join(out, 'keep.bin', 'x.bin'), /is not a folder/],
          ['an empty name', goodText, '', /empty file name/],
          ['a missing value to a new file', absent, join(out, 'new.bin'), /not stored/],
          ['a missing value over an existing file', absent, join(out, 'keep.bin'), /not stored/],
          ['a bad key to a new file', 'Qm-not-a-key', join(out, 'bad.bin'), /not a CID/]
        ]
        const results = await runAll(cases.map(([, key, file]) => ['get', key, '-o', file]))
        for (const [i, r] of results.entries()) oneError(r, `-o ${cases[i][0]}`, cases[i][3])
        assert.deepEqual((await readdir(out)).sort(), ['keep.bin', 'link-to-sub', 'sub'])
        assert.deepEqual(await readdir(join(out, 'sub')), [])
        assert.equal(await readFile(join(out, 'keep.bin'), 'utf8'), 'keep me')
      })
    })
  })
})

/** Whether a user other than the owner may run `path`: o+x on the file and on every folder above it. */
function executableByOthers (path: string): boolean {
  for (let p = resolvePath(path); ; p = dirname(p)) {
    if ((statSync(p).mode & 0o001) === 0) return false
    if (p === dirname(p)) return true
  }
}
