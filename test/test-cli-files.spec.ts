/**
 * The `dstore` command and the kinds of file it reads and writes: `get -o` onto symlinks,
 * FIFOs, character and block devices, sockets and this process's own descriptors; `put` of a
 * file that changes while it is read; one Ctrl+C (or SIGTERM) ending a command that waits on a
 * FIFO or a stalled reader. The real binary in child processes, a real `dstore global`
 * daemon, real FIFOs and device nodes (those need root: skipped otherwise).
 */
import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { chmod, lchown, lstat, mkdir, open, readFile, readdir, readlink, stat, symlink, truncate, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createGlobal } from '../src/index.js'
import { pseudoRandom, tempDir } from './helpers.js'
import { BIN, ONE_LINE, blake3Cid, cleanEnv, dstore, startGlobal, stopGlobal, type Daemon, type Result } from './proc.js'

const run = promisify(execFile)
const asRoot = process.getuid?.() === 0

/** Waits for a child to end and collects its output; `stdout: 'ignore'` leaves stdout alone. */
async function finished (child: ChildProcess, timeout = 20_000): Promise<Result> {
  const out: Buffer[] = []
  let stderr = ''
  child.stdout?.on('data', (b: Buffer) => out.push(b))
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString('utf8') })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`still running after ${timeout} ms: ${stderr}`)) }, timeout)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const stdout = Buffer.concat(out)
      resolve({ code, signal, stdout, out: stdout.toString('utf8'), stderr })
    })
  })
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('dstore CLI: files, FIFOs, devices and signals', function () {
  let repo: { path: string, cleanup: () => Promise<void> }
  let work: { path: string, cleanup: () => Promise<void> }
  let global: Daemon
  let env: Record<string, string>
  const value = pseudoRandom(300 * 1024 + 7, 11)
  let cid: string

  before(async function () {
    repo = await tempDir('dstore-clif-repo-')
    work = await tempDir('dstore-clif-work-')
    env = { DSTORE_REPO: repo.path }
    global = await startGlobal(['--repo', repo.path, '--listen', '/ip4/127.0.0.1/tcp/0'])
    await writeFile(join(work.path, 'value.bin'), value)
    const put = await dstore(['put', join(work.path, 'value.bin')], { env })
    assert.equal(put.code, 0, put.stderr)
    cid = put.out.trim()
    assert.equal(cid, blake3Cid(value))
  })

  after(async function () {
    try {
      if (global != null) await stopGlobal(global)
    } finally {
      await repo?.cleanup()
      await work?.cleanup()
    }
  })

  /** `dstore get cid -o file` as a child, with its stdout and stderr piped. */
  function getTo (file: string, extra: string[] = []): ChildProcess {
    return spawn(process.execPath, [BIN, 'get', cid, '-o', file, ...extra], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  }

  /** A `cat FILE` child reading a FIFO (it opens the FIFO and waits for a writer). */
  function reader (fifo: string): ChildProcess {
    return spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] })
  }

  describe('get -o', function () {
    it('a symlink to a regular file: the file it points to is replaced atomically, the link stays', async function () {
      const target = join(work.path, 'link-target.bin')
      const link = join(work.path, 'link.bin')
      await writeFile(target, 'old contents')
      await symlink('link-target.bin', link)
      const r = await dstore(['get', cid, '-o', link, '--json'], { env })
      assert.equal(r.code, 0, r.stderr)
      assert.ok((await lstat(link)).isSymbolicLink(), 'the link is still a link')
      assert.equal(await readlink(link), 'link-target.bin')
      assert.ok(Buffer.compare(await readFile(target), Buffer.from(value)) === 0, 'the file it points to holds the value')
      assert.deepEqual(JSON.parse(r.out), { cid, size: value.length, output: link, path: target, mode: 'atomic' })
    })

    it('a dangling symlink: the file is created where it points, the link stays', async function () {
      const link = join(work.path, 'dangling.bin')
      await symlink('dangling-target.bin', link)
      const r = await dstore(['get', cid, '-o', link], { env })
      assert.equal(r.code, 0, r.stderr)
      assert.ok((await lstat(link)).isSymbolicLink())
      assert.ok(Buffer.compare(await readFile(join(work.path, 'dangling-target.bin')), Buffer.from(value)) === 0)
    })

    it('a symlink someone else planted in a sticky world-writable folder (as /tmp) is not followed (as root): exit 1, its target untouched or not created', async function () {
      if (!asRoot) this.skip()
      const shared = join(work.path, 'shared-tmp')
      await mkdir(shared)
      await chmod(shared, 0o1777)
      const victim = join(work.path, 'victim.txt')
      await writeFile(victim, 'precious')
      const planted = join(work.path, 'planted.txt')
      for (const [name, to] of [['out', victim], ['dangling', planted]]) {
        const link = join(shared, name)
        await symlink(to, link)
        // Owned by another user than us and than the folder's owner: the kernel's protected_symlinks rule.
        await lchown(link, 65534, 65534)
        const r = await dstore(['get', cid, '-o', link], { env })
        assert.equal(r.code, 1, `${name}: ${r.stderr}`)
        assert.match(r.stderr, ONE_LINE)
        assert.ok((await lstat(link)).isSymbolicLink(), 'the link stays')
      }
      assert.equal(await readFile(victim, 'utf8'), 'precious')
      await assert.rejects(lstat(planted), { code: 'ENOENT' })
      // Our own link there is followed as before.
      const mine = join(shared, 'mine')
      await symlink(victim, mine)
      const r = await dstore(['get', cid, '-o', mine], { env })
      assert.equal(r.code, 0, r.stderr)
      assert.ok(Buffer.compare(await readFile(victim), Buffer.from(value)) === 0)
    })

    it('a FIFO: written through to a reader that comes later; it stays a FIFO', async function () {
      const fifo = join(work.path, 'out.fifo')
      await run('mkfifo', [fifo])
      const get = getTo(fifo)
      const done = finished(get)
      // No reader yet: the get waits for one (without holding a thread Ctrl+C could not stop).
      await sleep(700)
      const cat = finished(reader(fifo))
      const [g, c] = await Promise.all([done, cat])
      assert.equal(g.code, 0, g.stderr)
      assert.equal(g.stderr, '')
      assert.ok(Buffer.compare(c.stdout, Buffer.from(value)) === 0, `the reader got ${c.stdout.length} bytes`)
      assert.ok((await lstat(fifo)).isFIFO(), 'still a FIFO')
    })

    it('a FIFO whose reader leaves early: exit 1, one line saying so', async function () {
      const fifo = join(work.path, 'short.fifo')
      await run('mkfifo', [fifo])
      const head = finished(spawn('head', ['-c', '10', fifo], { stdio: ['ignore', 'pipe', 'ignore'] }))
      const r = await finished(getTo(fifo))
      assert.equal((await head).stdout.length, 10)
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, ONE_LINE)
      assert.match(r.stderr, /reader closed it/)
    })

    it('a character device (mknod c 1 3, a second /dev/null; as root): written through, the node stays', async function () {
      if (!asRoot) this.skip()
      const dev = join(work.path, 'null-dev')
      await run('mknod', [dev, 'c', '1', '3'])
      const before = await lstat(dev)
      const r = await dstore(['get', cid, '-o', dev], { env })
      assert.equal(r.code, 0, r.stderr)
      const after = await lstat(dev)
      assert.ok(after.isCharacterDevice(), 'still a character device')
      assert.equal(after.rdev, before.rdev)
      assert.equal(after.ino, before.ino, 'the same node, not a new one in its place')
      assert.deepEqual((await readdir(work.path)).filter(f => f.includes('.dstore-')), [], 'no temp file')
    })

    it('/dev/fd/1, and a symlink to /proc/self/fd/1: written through to stdout', async function () {
      const link = join(work.path, 'my-stdout')
      await symlink('/proc/self/fd/1', link)
      for (const path of ['/dev/fd/1', link]) {
        const r = await dstore(['get', cid, '-o', path], { env })
        assert.equal(r.code, 0, `${path}: ${r.stderr}`)
        assert.ok(Buffer.compare(r.stdout, Buffer.from(value)) === 0, `${path}: stdout got ${r.stdout.length} bytes`)
      }
      assert.equal(await readlink(link), '/proc/self/fd/1', 'the link is untouched')
    })

    it('--json with -o /dev/fd/1 (or a link to /proc/self/fd/1): stdout is the value only, the JSON document goes to stderr', async function () {
      const link = join(work.path, 'my-stdout-json')
      await symlink('/proc/self/fd/1', link)
      for (const path of ['/dev/fd/1', '/dev/stdout', link]) {
        const r = await dstore(['get', '--json', cid, '-o', path], { env })
        assert.equal(r.code, 0, `${path}: ${r.stderr}`)
        assert.ok(Buffer.compare(r.stdout, Buffer.from(value)) === 0, `${path}: stdout got ${r.stdout.length} bytes, not the ${value.length} of the value`)
        const doc = JSON.parse(r.stderr) as { cid: string, mode: string }
        assert.equal(doc.cid, cid)
        assert.equal(doc.mode, 'through')
      }
    })

    it('/dev/stdout as root: written through, /dev/stdout stays a symlink (in a mount namespace with a /dev of its own)', async function () {
      if (!asRoot) this.skip()
      // A private /dev, so a regression replaces only that one, not the machine's.
      const script = [
        'mount -t tmpfs tmpfs /dev', 'ln -s /proc/self/fd /dev/fd', 'ln -s /proc/self/fd/1 /dev/stdout',
        'mknod -m 666 /dev/null c 1 3', 'mknod -m 666 /dev/urandom c 1 9',
        `"$NODE" "$BIN" get "$CID" -o /dev/stdout`, 'code=$?', 'stat -c %F /dev/stdout >&2', 'exit $code'
      ].join(' && ').replace('&& code=$? &&', '; code=$?;').replace('>&2 && exit', '>&2; exit')
      const probe = await finished(spawn('unshare', ['-m', 'true'], { stdio: 'ignore' }))
      if (probe.code !== 0) this.skip()
      const r = await finished(spawn('unshare', ['-m', 'sh', '-c', script], { env: cleanEnv({ ...env, NODE: process.execPath, BIN, CID: cid }), stdio: ['ignore', 'pipe', 'pipe'] }))
      assert.equal(r.code, 0, r.stderr)
      assert.ok(Buffer.compare(r.stdout, Buffer.from(value)) === 0, `stdout got ${r.stdout.length} bytes`)
      assert.equal(r.stderr, 'symbolic link\n')
    })

    it('/dev/fd/1 when stdout is a file opened for appending (>>): appended to, not replaced', async function () {
      const log = join(work.path, 'append.log')
      await writeFile(log, 'earlier lines\n')
      const fd = openSync(log, 'a')
      let r: Result
      try {
        r = await finished(spawn(process.execPath, [BIN, 'get', cid, '-o', '/dev/fd/1'], { env: cleanEnv(env), stdio: ['ignore', fd, 'pipe'] }))
      } finally {
        closeSync(fd)
      }
      assert.equal(r.code, 0, r.stderr)
      assert.ok(Buffer.compare(await readFile(log), Buffer.concat([Buffer.from('earlier lines\n'), value])) === 0)
    })

    it('a new path that becomes a FIFO while the value is fetched is not renamed over: exit 1, one line, still a FIFO, no temp file left', async function () {
      // Not 64 MiB: the tests of files changing while put check that no value of that size is stored.
      const big = pseudoRandom(48 * 1024 * 1024 + 13, 77)
      await writeFile(join(work.path, 'big-for-race.bin'), big)
      const put = await dstore(['put', join(work.path, 'big-for-race.bin')], { env })
      assert.equal(put.code, 0, put.stderr)
      const out = join(work.path, 'becomes-fifo')
      const child = spawn(process.execPath, [BIN, 'get', put.out.trim(), '-o', out], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
      const done = finished(child, 60_000)
      const temp = (names: string[]): boolean => names.some(n => n.startsWith('.becomes-fifo.dstore-'))
      // Once the get writes its temp file, Global is paused (the get cannot finish meanwhile) and the path becomes a FIFO.
      for (let waited = 0; !temp(await readdir(work.path)); waited += 5) {
        assert.ok(waited < 30_000 && child.exitCode === null, 'the get to begin')
        await sleep(5)
      }
      global.proc.kill('SIGSTOP')
      try {
        await run('mkfifo', [out])
      } finally {
        global.proc.kill('SIGCONT')
      }
      const r = await done
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, ONE_LINE)
      assert.match(r.stderr, /becomes-fifo/)
      assert.ok((await lstat(out)).isFIFO(), 'still a FIFO')
      assert.ok(!temp(await readdir(work.path)), 'the temp file is removed')
    })

    it('a socket and a block device (mknod b; as root) are refused: exit 1, one line, left as they were', async function () {
      const sock = join(work.path, 'a.sock')
      const server = createServer()
      await new Promise<void>(resolve => server.listen(sock, resolve))
      try {
        const targets: Array<[string, RegExp]> = [[sock, /it is a socket/]]
        if (asRoot) {
          const blk = join(work.path, 'block-dev')
          await run('mknod', [blk, 'b', '7', '200'])
          targets.push([blk, /it is a block device/])
        }
        for (const [path, why] of targets) {
          const r = await dstore(['get', cid, '-o', path], { env })
          assert.equal(r.code, 1, `${path}: ${r.stderr}`)
          assert.match(r.stderr, ONE_LINE)
          assert.match(r.stderr, why)
        }
        assert.ok((await lstat(sock)).isSocket(), 'still a socket')
        if (asRoot) assert.ok((await lstat(join(work.path, 'block-dev'))).isBlockDevice(), 'still a block device')
      } finally {
        server.close()
      }
    })
  })

  describe('one stop signal ends a command that waits', function () {
    /**
     * Starts `args`; once `ready` holds (or, without it, 3 s later: the command is connected and
     * waiting by then), sends `sig` and expects the exit status within 5 s.
     */
    async function interrupt (args: string[], sig: NodeJS.Signals, opts: { ready?: (pid: number) => Promise<boolean>, paused?: boolean } = {}): Promise<Result & { after: number }> {
      const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
      if (opts.paused === true) child.stdout.pause()
      let stderr = ''
      child.stderr.on('data', (b: Buffer) => { stderr += b.toString('utf8') })
      const closed = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => child.on('close', (code, signal) => { resolve({ code, signal }) }))
      try {
        if (opts.ready === undefined) await sleep(3000)
        else {
          for (let waited = 0; !(await opts.ready(child.pid!)); waited += 20) {
            assert.ok(waited < 15_000 && child.exitCode === null, `the command to get ready: ${stderr}`)
            await sleep(20)
          }
        }
        assert.equal(child.exitCode, null, `still running before the signal: ${stderr}`)
      } catch (err) {
        child.kill('SIGKILL')
        throw err
      }
      const t0 = Date.now()
      child.kill(sig)
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      const { code, signal } = await closed
      clearTimeout(timer)
      return { code, signal, stdout: Buffer.alloc(0), out: '', stderr, after: Date.now() - t0 }
    }

    it('put of a FIFO with no writer: SIGINT exits 130, SIGTERM 143, one line each', async function () {
      const fifo = join(work.path, 'in.fifo')
      await run('mkfifo', [fifo])
      // Ready once it has the FIFO open (without a writer, that is where it waits).
      const hasOpen = async (pid: number): Promise<boolean> => {
        const fds = await readdir(`/proc/${pid}/fd`).catch(() => [])
        const links = await Promise.all(fds.map(async fd => await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')))
        return links.includes(fifo)
      }
      for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
        const r = await interrupt(['put', fifo], sig, { ready: hasOpen })
        assert.equal(r.signal, null, `${sig}: ended by its own exit, not killed (${r.stderr})`)
        assert.equal(r.code, code, `${sig}: ${r.stderr}`)
        assert.match(r.stderr, ONE_LINE)
        assert.match(r.stderr, new RegExp(`interrupted by ${sig}`))
        assert.ok(r.after < 4000, `exited ${r.after} ms after the signal`)
      }
    })

    it('get -o a FIFO with no reader: SIGINT exits 130', async function () {
      const fifo = join(work.path, 'unread.fifo')
      await run('mkfifo', [fifo])
      const r = await interrupt(['get', cid, '-o', fifo], 'SIGINT')
      assert.equal(r.code, 130, r.stderr)
      assert.match(r.stderr, /interrupted by SIGINT/)
      assert.ok((await lstat(fifo)).isFIFO())
    })

    it('cat into a stdout nobody reads (the pipe is full): SIGTERM exits 143', async function () {
      const big = pseudoRandom(8 * 1024 * 1024, 12)
      await writeFile(join(work.path, 'big.bin'), big)
      const put = await dstore(['put', join(work.path, 'big.bin')], { env })
      assert.equal(put.code, 0, put.stderr)
      const r = await interrupt(['cat', put.out.trim()], 'SIGTERM', { paused: true })
      assert.equal(r.code, 143, r.stderr)
      assert.match(r.stderr, /interrupted by SIGTERM/)
    })
  })

  describe('put of a file that changes while it is read', function () {
    const size = 64 * 1024 * 1024
    let n = 0

    /**
     * Puts a `size`-byte file and, once Global has begun writing it (a temp file in its store),
     * pauses Global (SIGSTOP, so the put cannot have read much further), applies `change` to
     * the file, and resumes Global: the change lands mid-read, every time.
     */
    async function putChanging (change: (file: string) => Promise<void>): Promise<{ r: Result, file: string, original: Uint8Array }> {
      const file = join(work.path, `changing-${n++}.bin`)
      const original = pseudoRandom(size, 100 + n)
      await writeFile(file, original)
      // A temp file left by an earlier put (Global removes those as it fails them) is not this one's.
      const tmp = join(repo.path, 'store', 'tmp')
      const earlier = new Set(await readdir(tmp).catch(() => []))
      const child = spawn(process.execPath, [BIN, 'put', '--json', file], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
      const done = finished(child, 60_000)
      for (let waited = 0; ; waited += 5) {
        const parts = await readdir(tmp).catch(() => [])
        if (parts.some(p => p.endsWith('.part') && !earlier.has(p))) break
        assert.ok(waited < 30_000 && child.exitCode === null, 'the put to begin')
        await sleep(5)
      }
      global.proc.kill('SIGSTOP')
      try {
        await change(file)
      } finally {
        global.proc.kill('SIGCONT')
      }
      return { r: await done, file, original }
    }

    async function assertNothingStored (r: Result, original: Uint8Array, file: string): Promise<void> {
      assert.equal(r.code, 1, r.stderr)
      const [row] = JSON.parse(r.out) as Array<{ input: string, error: { name: string, code: string, message: string } }>
      assert.equal(row.input, file)
      assert.equal(row.error.name, 'FileChangedError')
      assert.equal(row.error.code, 'ERR_FILE_CHANGED')
      assert.match(row.error.message, /changed while it was read/)
      const now = await readFile(file)
      const has = await dstore(['has', '--json', blake3Cid(original), blake3Cid(now)], { env })
      assert.deepEqual(JSON.parse(has.out).map((x: { present: boolean }) => x.present), [false, false], 'neither the old nor the new contents are stored')
      const ls = await dstore(['ls', '--json'], { env })
      const sizes = (JSON.parse(ls.out) as Array<{ size: number }>).map(e => e.size)
      assert.ok(!sizes.includes(original.length) && !sizes.includes(now.length), `no value of either size: ${sizes.join(', ')}`)
    }

    it('truncated mid-put: exit 1, FileChangedError, nothing stored', async function () {
      const { r, file, original } = await putChanging(async (f) => { await truncate(f, 1024 * 1024) })
      await assertNothingStored(r, original, file)
    })

    it('grown mid-put: exit 1, FileChangedError, nothing stored', async function () {
      const { r, file, original } = await putChanging(async (f) => { await writeFile(f, 'more', { flag: 'a' }) })
      await assertNothingStored(r, original, file)
    })

    it('rewritten in place mid-put (same size, new modification time): exit 1, FileChangedError, nothing stored', async function () {
      const { r, file, original } = await putChanging(async (f) => {
        const h = await open(f, 'r+')
        try {
          // Far ahead of where the put is, and a later mtime whatever the clock's granularity.
          await h.write(Buffer.from('overwritten'), 0, 11, size - 100)
          const st = await stat(f)
          await h.utimes(st.atime, new Date(st.mtimeMs + 2000))
        } finally {
          await h.close()
        }
      })
      await assertNothingStored(r, original, file)
    })
  })

  describe('put - -', function () {
    it('stdin given twice is a usage error (exit 2, one line), and the empty value is not stored', async function () {
      const r = await dstore(['put', '-', '-'], { env, input: 'read once' })
      assert.equal(r.code, 2, r.stderr)
      assert.equal(r.out, '')
      assert.match(r.stderr, ONE_LINE)
      assert.match(r.stderr, /stdin \(-\) can be put only once/)
      const has = await dstore(['has', '--json', blake3Cid(new Uint8Array(0)), blake3Cid(new TextEncoder().encode('read once'))], { env })
      assert.deepEqual(JSON.parse(has.out).map((x: { present: boolean }) => x.present), [false, false])
    })

    it('/dev/stdin is stdin too: read as it is (here a socket, which cannot be opened by path), and counts as the one -', async function () {
      const [one, two] = await Promise.all([
        dstore(['put', '/dev/stdin'], { env, input: 'through /dev/stdin' }),
        dstore(['put', '-', '/dev/stdin'], { env, input: 'twice' })
      ])
      assert.equal(one.code, 0, one.stderr)
      assert.equal(one.out, blake3Cid(new TextEncoder().encode('through /dev/stdin')) + '\n')
      assert.equal(two.code, 2, two.stderr)
      assert.match(two.stderr, ONE_LINE)
    })
  })

  describe('put of a file Global already holds', function () {
    it('a file rewritten while it is hashed (into contents Global holds) is not acknowledged: exit 1, FileChangedError', async function () {
      const size = 256 * 1024 * 1024
      const held = pseudoRandom(size, 501)
      const heldFile = join(work.path, 'held.bin')
      await writeFile(heldFile, held)
      const first = await dstore(['put', heldFile], { env })
      assert.equal(first.code, 0, first.stderr)
      // The file starts with other contents: only its last MiB differs from the held value.
      const file = join(work.path, 'rewritten-while-hashed.bin')
      const original = Buffer.from(held)
      original.fill(7, size - 1024 * 1024)
      await writeFile(file, original)
      const child = spawn(process.execPath, [BIN, 'put', '--json', file], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
      const done = finished(child, 60_000)
      // Paused once it has read a good part of the file (hashing it, before asking Global), then
      // the file's tail is rewritten into the held value's, ahead of the reader.
      const readSoFar = async (): Promise<number> => Number(/rchar: (\d+)/.exec(await readFile(`/proc/${child.pid ?? 0}/io`, 'utf8').catch(() => ''))?.[1] ?? 0)
      while (await readSoFar() < 96 * 1024 * 1024) assert.ok(child.exitCode === null, 'the put to be reading')
      child.kill('SIGSTOP')
      try {
        const h = await open(file, 'r+')
        try {
          await h.write(held, size - 1024 * 1024, 1024 * 1024, size - 1024 * 1024)
          const st = await h.stat()
          await h.utimes(st.atime, new Date(st.mtimeMs + 2000))
        } finally {
          await h.close()
        }
      } finally {
        child.kill('SIGCONT')
      }
      const r = await done
      assert.equal(r.code, 1, `${r.out} ${r.stderr}`)
      const [row] = JSON.parse(r.out) as Array<{ error: { name: string } }>
      assert.equal(row.error?.name, 'FileChangedError')
    })

    it('a second put of a 5 MiB file sends no value bytes, and a peer that may only read can put it', async function () {
      const dir = await tempDir('dstore-cli-dedupe-')
      // Only the client's identity may write: a second client (another repository) may read.
      const id = await dstore(['id', '--repo', join(dir.path, 'client')])
      assert.equal(id.code, 0, id.stderr)
      const global = await createGlobal({ repo: join(dir.path, 'global'), sync: false, allowWriters: [id.out.trim()] })
      try {
        const file = join(dir.path, 'five.bin')
        const value = pseudoRandom(5 * 1024 * 1024, 91)
        await writeFile(file, value)
        const args = ['put', file, '--global', global.multiaddrs[0], '--repo', join(dir.path, 'client')]
        const first = await dstore(args)
        assert.equal(first.code, 0, first.stderr)
        assert.equal(first.out, blake3Cid(value) + '\n')
        const inAfterFirst = global.stats().bytesIn
        assert.ok(inAfterFirst >= value.length, 'the first put sent the value')
        const second = await dstore(args)
        assert.equal(second.code, 0, second.stderr)
        assert.equal(second.out, first.out)
        assert.ok(global.stats().bytesIn - inAfterFirst < 64 * 1024, `the second put sent ${global.stats().bytesIn - inAfterFirst} bytes`)
        const refused = await dstore(['put', '-', '--global', global.multiaddrs[0], '--repo', join(dir.path, 'reader')], { input: 'not stored' })
        assert.equal(refused.code, 1, `the reader may not write a new value: ${refused.out}${refused.stderr}`)
        assert.match(refused.stderr, /may not write/)
        const reader = await dstore([...args.slice(0, 4), '--repo', join(dir.path, 'reader')])
        assert.equal(reader.code, 0, reader.stderr)
        assert.equal(reader.out, first.out)
      } finally {
        await global.stop()
        await dir.cleanup()
      }
    })
  })
})
