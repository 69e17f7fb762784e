/**
 * Generates the WebAssembly BLAKE3 backend (`src/core/blake3/wasm-binary.ts`).
 *
 *   npx tsc -p . && node dist/scripts/build-blake3-wasm.js
 *
 * The module is written here as WAT text, produced by TypeScript so that the seven unrolled
 * rounds, the message schedule and the transpositions come from one short description instead
 * of thousands of hand-typed lines. `wabt` assembles it; the binary is committed as base64 in a
 * generated TypeScript module, so the runtime never needs wabt. `test/test-blake3-wasm-build`
 * re-runs this generator and checks the committed file is byte-identical.
 *
 * Design (mirrors the reference C `blake3_hash_many` for SSE4.1/NEON):
 *  - `hash4` compresses four independent inputs at once, one per i32x4 lane. For chunks the
 *    lanes are four consecutive 1 KiB chunks (16 blocks each); for parents they are four
 *    consecutive 64-byte pairs of CVs (one block). Message words are loaded as 16-byte rows and
 *    transposed 4x4 with i8x16.shuffle patterns that V8 lowers to punpck{l,h}{dq,qdq}.
 *    Rotations by 16 and 8 are byte shuffles (pshufb); 12 and 7 are shift/shift/or.
 *  - `compress1` is a scalar, fully unrolled compression on i32 locals (i32.rotr is one
 *    instruction); it handles the last few chunks, a partial last chunk, odd parents and the
 *    root node, which need per-input flags or lengths.
 *  - `subtree` and `groups` hash all chunks of the input region into a CV array, then reduce
 *    it level by level, pairing neighbours four pairs at a time and carrying an odd last CV up
 *    unchanged. Pairing neighbours bottom-up builds exactly BLAKE3's left-heavy tree (every
 *    left subtree is the largest power of two), and stopping after `groupLog` levels leaves the
 *    CVs of aligned groups of 2^groupLog chunks. Only the final parent gets ROOT.
 *
 * All work happens in one linear memory (layout below, exported to the glue as `LAYOUT`).
 */
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
const CHUNK_START = 1
const CHUNK_END = 2
const PARENT = 4
const ROOT = 8

/** Memory layout. Everything the glue needs to know is in here. */
export const LAYOUT = {
  /** IV, 32 bytes (data segment). */
  iv: 0,
  /** Parent block input for `parent`: left CV then right CV. */
  parentBlock: 64,
  /** Zero-padded copy of a partial last block. */
  blockBuf: 128,
  /** Chaining values of the input region's chunks; results are read from its start. */
  cvs: 1024,
  /** CV stack the glue uses to merge slices of inputs larger than the input region (64 x 32). */
  stack: 34816,
  /** Input region: `inputLen` bytes. */
  input: 65536,
  /** Bytes in the input region (1024 chunks; a power of two so slices are whole subtrees). */
  inputLen: 1 << 20
} as const

const PAGES = (LAYOUT.input + LAYOUT.inputLen) / 65536

/** Message word order for each of the 7 rounds. */
function schedule (): number[][] {
  const perm = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8]
  const rounds: number[][] = []
  let order = Array.from({ length: 16 }, (_, i) => i)
  for (let r = 0; r < 7; r++) {
    rounds.push(order)
    order = perm.map(p => order[p])
  }
  return rounds
}

/** The (a, b, c, d) state indices of the 8 G applications in a round: columns then diagonals. */
const G_INDICES = [
  [0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15],
  [0, 5, 10, 15], [1, 6, 11, 12], [2, 7, 8, 13], [3, 4, 9, 14]
]

const hex32 = (n: number): string => '0x' + (n >>> 0).toString(16).padStart(8, '0')

// Byte shuffles.
const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i)
/** Rotate each 32-bit lane right by 16 / 8 bits (little-endian lanes). */
const ROT16 = [2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13]
const ROT8 = [1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12]
/** punpckldq / punpckhdq / punpcklqdq / punpckhqdq. */
const LO32 = [...range(0, 4), ...range(16, 4), ...range(4, 4), ...range(20, 4)]
const HI32 = [...range(8, 4), ...range(24, 4), ...range(12, 4), ...range(28, 4)]
const LO64 = [...range(0, 8), ...range(16, 8)]
const HI64 = [...range(8, 8), ...range(24, 8)]
const shuffle = (pattern: number[], a: string, b: string): string => `(i8x16.shuffle ${pattern.join(' ')} ${a} ${b})`

/** The whole WAT module. */
export function generateWat (): string {
  const S = schedule()
  const L = LAYOUT
  const out: string[] = []
  const emit = (s: string): void => { out.push(s) }

  emit('(module')
  emit(`  (memory (export "memory") ${PAGES} ${PAGES})`)
  emit(`  (data (i32.const ${L.iv}) "${IV.map(w => [0, 8, 16, 24].map(s => '\\' + ((w >>> s) & 0xff).toString(16).padStart(2, '0')).join('')).join('')}")`)

  // ---------------------------------------------------------------------------------------
  // compress1: scalar compression. Reads the CV at $cv and the block at $m, writes the new CV
  // (first 8 output words) to $out. $out may alias $cv or $m: all inputs are loaded first.
  // Measured against a row-wise SIMD form (state as four i32x4 rows, diagonals by lane
  // rotation, message words by v128.load32_lane, as in the reference SSE4.1 compress): that
  // was ~30% slower on a lone 1 KiB chunk here, its serial dependency chain outweighing the
  // fewer instructions, while the scalar form keeps four independent G's in flight.
  {
    emit('  (func $compress1 (param $cv i32) (param $m i32) (param $lo i32) (param $hi i32) (param $blen i32) (param $flags i32) (param $out i32)')
    emit('    ' + range(0, 16).map(i => `(local $v${i} i32)`).join(' '))
    emit('    ' + range(0, 16).map(i => `(local $m${i} i32)`).join(' '))
    for (let i = 0; i < 16; i++) emit(`    (local.set $m${i} (i32.load offset=${i * 4} (local.get $m)))`)
    for (let i = 0; i < 8; i++) emit(`    (local.set $v${i} (i32.load offset=${i * 4} (local.get $cv)))`)
    for (let i = 0; i < 4; i++) emit(`    (local.set $v${8 + i} (i32.const ${hex32(IV[i])}))`)
    emit('    (local.set $v12 (local.get $lo)) (local.set $v13 (local.get $hi))')
    emit('    (local.set $v14 (local.get $blen)) (local.set $v15 (local.get $flags))')
    const v = (i: number): string => `(local.get $v${i})`
    for (const order of S) {
      G_INDICES.forEach(([a, b, c, d], g) => {
        const mx = `(local.get $m${order[2 * g]})`
        const my = `(local.get $m${order[2 * g + 1]})`
        emit(`    (local.set $v${a} (i32.add (i32.add ${v(a)} ${v(b)}) ${mx}))`)
        emit(`    (local.set $v${d} (i32.rotr (i32.xor ${v(d)} ${v(a)}) (i32.const 16)))`)
        emit(`    (local.set $v${c} (i32.add ${v(c)} ${v(d)}))`)
        emit(`    (local.set $v${b} (i32.rotr (i32.xor ${v(b)} ${v(c)}) (i32.const 12)))`)
        emit(`    (local.set $v${a} (i32.add (i32.add ${v(a)} ${v(b)}) ${my}))`)
        emit(`    (local.set $v${d} (i32.rotr (i32.xor ${v(d)} ${v(a)}) (i32.const 8)))`)
        emit(`    (local.set $v${c} (i32.add ${v(c)} ${v(d)}))`)
        emit(`    (local.set $v${b} (i32.rotr (i32.xor ${v(b)} ${v(c)}) (i32.const 7)))`)
      })
    }
    for (let i = 0; i < 8; i++) emit(`    (i32.store offset=${i * 4} (local.get $out) (i32.xor ${v(i)} ${v(i + 8)}))`)
    emit('  )')
  }

  // ---------------------------------------------------------------------------------------
  // chunk1: one chunk of $len (0..1024) bytes at $p, counter $ctr, extra last-block flags
  // $last (ROOT or 0), CV written to $out.
  emit(`  (func $chunk1 (param $p i32) (param $len i32) (param $ctr i64) (param $last i32) (param $out i32)
    (local $pos i32) (local $blen i32) (local $flags i32) (local $lo i32) (local $hi i32) (local $src i32)
    (local.set $lo (i32.wrap_i64 (local.get $ctr)))
    (local.set $hi (i32.wrap_i64 (i64.shr_u (local.get $ctr) (i64.const 32))))
    (memory.copy (local.get $out) (i32.const ${L.iv}) (i32.const 32))
    (local.set $flags (i32.const ${CHUNK_START}))
    (loop $blocks
      (local.set $blen (i32.sub (local.get $len) (local.get $pos)))
      (if (i32.gt_u (local.get $blen) (i32.const 64)) (then (local.set $blen (i32.const 64))))
      (local.set $src (i32.add (local.get $p) (local.get $pos)))
      (if (i32.lt_u (local.get $blen) (i32.const 64)) (then
        (memory.fill (i32.const ${L.blockBuf}) (i32.const 0) (i32.const 64))
        (memory.copy (i32.const ${L.blockBuf}) (local.get $src) (local.get $blen))
        (local.set $src (i32.const ${L.blockBuf}))))
      (local.set $pos (i32.add (local.get $pos) (local.get $blen)))
      (if (i32.ge_u (local.get $pos) (local.get $len)) (then
        (local.set $flags (i32.or (local.get $flags) (i32.or (i32.const ${CHUNK_END}) (local.get $last))))))
      (call $compress1 (local.get $out) (local.get $src) (local.get $lo) (local.get $hi) (local.get $blen) (local.get $flags) (local.get $out))
      (local.set $flags (i32.const 0))
      (br_if $blocks (i32.lt_u (local.get $pos) (local.get $len)))))`)

  // ---------------------------------------------------------------------------------------
  // hash4: four inputs of $blocks blocks each, lane j at $p + j*$stride. Counter of lane j is
  // $ctr + j*$inc. Flags: $flags on every block, plus $start on the first and $end on the last.
  // Writes the four CVs (32 bytes each, consecutive) to $out; may overlap the input when every
  // input byte precedes its output position or the call has one block (all loads come first).
  {
    emit('  (func $hash4 (param $p i32) (param $stride i32) (param $blocks i32) (param $ctr i64) (param $inc i32) (param $flags i32) (param $start i32) (param $end i32) (param $out i32)')
    emit('    (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $b i32) (local $f i32) (local $lo v128) (local $hi v128)')
    emit('    ' + range(0, 8).map(i => `(local $h${i} v128)`).join(' '))
    emit('    ' + range(0, 16).map(i => `(local $v${i} v128)`).join(' '))
    emit('    ' + range(0, 16).map(i => `(local $m${i} v128)`).join(' '))
    emit('    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)')
    emit('    (local.set $p1 (i32.add (local.get $p) (local.get $stride)))')
    emit('    (local.set $p2 (i32.add (local.get $p1) (local.get $stride)))')
    emit('    (local.set $p3 (i32.add (local.get $p2) (local.get $stride)))')
    // Per-lane 64-bit counters: lo = ctr_lo + j*inc; hi = ctr_hi + carry(lo wrapped).
    emit('    (local.set $lo (i32x4.add (i32x4.splat (i32.wrap_i64 (local.get $ctr))) (i32x4.mul (i32x4.splat (local.get $inc)) (v128.const i32x4 0 1 2 3))))')
    emit('    (local.set $hi (i32x4.sub (i32x4.splat (i32.wrap_i64 (i64.shr_u (local.get $ctr) (i64.const 32))))')
    emit('      (i32x4.lt_u (local.get $lo) (i32x4.splat (i32.wrap_i64 (local.get $ctr))))))')
    for (let i = 0; i < 8; i++) emit(`    (local.set $h${i} (v128.const i32x4 ${hex32(IV[i])} ${hex32(IV[i])} ${hex32(IV[i])} ${hex32(IV[i])}))`)
    emit('    (local.set $f (i32.or (local.get $flags) (local.get $start)))')
    emit('    (loop $blocks')
    emit('      (local.set $b (i32.add (local.get $b) (i32.const 1)))')
    emit('      (if (i32.eq (local.get $b) (local.get $blocks)) (then (local.set $f (i32.or (local.get $f) (local.get $end)))))')
    // Load and transpose the message: row group g holds words 4g..4g+3 of each lane.
    const ptrs = ['$p', '$p1', '$p2', '$p3']
    for (let g = 0; g < 4; g++) {
      for (let j = 0; j < 4; j++) emit(`      (local.set $a${j} (v128.load offset=${g * 16} (local.get ${ptrs[j]})))`)
      emit(`      (local.set $t0 ${shuffle(LO32, '(local.get $a0)', '(local.get $a1)')})`)
      emit(`      (local.set $t1 ${shuffle(HI32, '(local.get $a0)', '(local.get $a1)')})`)
      emit(`      (local.set $t2 ${shuffle(LO32, '(local.get $a2)', '(local.get $a3)')})`)
      emit(`      (local.set $t3 ${shuffle(HI32, '(local.get $a2)', '(local.get $a3)')})`)
      const setM = (k: number, value: string): void => emit(`      (local.set $m${k} ${value})`)
      setM(4 * g, shuffle(LO64, '(local.get $t0)', '(local.get $t2)'))
      setM(4 * g + 1, shuffle(HI64, '(local.get $t0)', '(local.get $t2)'))
      setM(4 * g + 2, shuffle(LO64, '(local.get $t1)', '(local.get $t3)'))
      setM(4 * g + 3, shuffle(HI64, '(local.get $t1)', '(local.get $t3)'))
    }
    for (let i = 0; i < 8; i++) emit(`      (local.set $v${i} (local.get $h${i}))`)
    for (let i = 0; i < 4; i++) emit(`      (local.set $v${8 + i} (v128.const i32x4 ${hex32(IV[i])} ${hex32(IV[i])} ${hex32(IV[i])} ${hex32(IV[i])}))`)
    emit('      (local.set $v12 (local.get $lo)) (local.set $v13 (local.get $hi))')
    emit('      (local.set $v14 (v128.const i32x4 64 64 64 64)) (local.set $v15 (i32x4.splat (local.get $f)))')
    const v = (i: number): string => `(local.get $v${i})`
    // The message stays in 16 v128 locals; storing it to memory and loading each word at its
    // use (to ease register pressure) measured no faster.
    const getM = (k: number): string => `(local.get $m${k})`
    for (const order of S) {
      G_INDICES.forEach(([a, b, c, d], g) => {
        const mx = getM(order[2 * g])
        const my = getM(order[2 * g + 1])
        emit(`      (local.set $v${a} (i32x4.add (i32x4.add ${v(a)} ${v(b)}) ${mx}))`)
        emit(`      (local.set $v${d} ${shuffle(ROT16, `(local.tee $v${d} (v128.xor ${v(d)} ${v(a)}))`, v(d))})`)
        emit(`      (local.set $v${c} (i32x4.add ${v(c)} ${v(d)}))`)
        emit(`      (local.set $v${b} (v128.or (i32x4.shr_u (local.tee $v${b} (v128.xor ${v(b)} ${v(c)})) (i32.const 12)) (i32x4.shl ${v(b)} (i32.const 20))))`)
        emit(`      (local.set $v${a} (i32x4.add (i32x4.add ${v(a)} ${v(b)}) ${my}))`)
        emit(`      (local.set $v${d} ${shuffle(ROT8, `(local.tee $v${d} (v128.xor ${v(d)} ${v(a)}))`, v(d))})`)
        emit(`      (local.set $v${c} (i32x4.add ${v(c)} ${v(d)}))`)
        emit(`      (local.set $v${b} (v128.or (i32x4.shr_u (local.tee $v${b} (v128.xor ${v(b)} ${v(c)})) (i32.const 7)) (i32x4.shl ${v(b)} (i32.const 25))))`)
      })
    }
    for (let i = 0; i < 8; i++) emit(`      (local.set $h${i} (v128.xor ${v(i)} ${v(i + 8)}))`)
    emit('      (local.set $f (local.get $flags))')
    for (const q of ptrs) emit(`      (local.set ${q} (i32.add (local.get ${q}) (i32.const 64)))`)
    emit('      (br_if $blocks (i32.lt_u (local.get $b) (local.get $blocks))))')
    // Transpose the CVs back: lane j's words 0-3 and 4-7.
    for (let half = 0; half < 2; half++) {
      const h = (k: number): string => `(local.get $h${4 * half + k})`
      emit(`    (local.set $t0 ${shuffle(LO32, h(0), h(1))})`)
      emit(`    (local.set $t1 ${shuffle(HI32, h(0), h(1))})`)
      emit(`    (local.set $t2 ${shuffle(LO32, h(2), h(3))})`)
      emit(`    (local.set $t3 ${shuffle(HI32, h(2), h(3))})`)
      emit(`    (v128.store offset=${half * 16} (local.get $out) ${shuffle(LO64, '(local.get $t0)', '(local.get $t2)')})`)
      emit(`    (v128.store offset=${32 + half * 16} (local.get $out) ${shuffle(HI64, '(local.get $t0)', '(local.get $t2)')})`)
      emit(`    (v128.store offset=${64 + half * 16} (local.get $out) ${shuffle(LO64, '(local.get $t1)', '(local.get $t3)')})`)
      emit(`    (v128.store offset=${96 + half * 16} (local.get $out) ${shuffle(HI64, '(local.get $t1)', '(local.get $t3)')})`)
    }
    emit('  )')
  }

  // ---------------------------------------------------------------------------------------
  // chunks: CVs of the chunks of the $len input bytes (counter $ctr) into the CV array.
  // With $root (ROOT or 0) and a single chunk, that chunk is finalised as the root.
  // Returns the number of chunks (at least 1: empty input is one empty chunk).
  emit(`  (func $chunks (param $len i32) (param $ctr i64) (param $root i32) (result i32)
    (local $n i32) (local $full i32) (local $i i32) (local $off i32) (local $rest i32)
    (local.set $n (i32.shr_u (i32.add (local.get $len) (i32.const 1023)) (i32.const 10)))
    (if (i32.eqz (local.get $n)) (then (local.set $n (i32.const 1))))
    (if (i32.eq (local.get $n) (i32.const 1)) (then
      (call $chunk1 (i32.const ${L.input}) (local.get $len) (local.get $ctr) (local.get $root) (i32.const ${L.cvs}))
      (return (i32.const 1))))
    (local.set $full (i32.shr_u (local.get $len) (i32.const 10)))
    ;; Four full chunks at a time. With 2 or 3 full chunks left, one more 4-wide call is
    ;; cheaper than scalar ones: the extra lanes read inside the input region and their CVs
    ;; land in CV slots that are either past the end or rewritten below.
    (block $done (loop $four
      (br_if $done (i32.lt_s (i32.sub (local.get $full) (local.get $i)) (i32.const 2)))
      (call $hash4 (i32.add (i32.const ${L.input}) (i32.shl (local.get $i) (i32.const 10))) (i32.const 1024) (i32.const 16)
        (i64.add (local.get $ctr) (i64.extend_i32_u (local.get $i))) (i32.const 1) (i32.const 0) (i32.const ${CHUNK_START}) (i32.const ${CHUNK_END})
        (i32.add (i32.const ${L.cvs}) (i32.shl (local.get $i) (i32.const 5))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $four)))
    (if (i32.gt_u (local.get $i) (local.get $full)) (then (local.set $i (local.get $full))))
    (block $end (loop $one
      (br_if $end (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $off (i32.shl (local.get $i) (i32.const 10)))
      (local.set $rest (i32.sub (local.get $len) (local.get $off)))
      (if (i32.gt_u (local.get $rest) (i32.const 1024)) (then (local.set $rest (i32.const 1024))))
      (call $chunk1 (i32.add (i32.const ${L.input}) (local.get $off)) (local.get $rest)
        (i64.add (local.get $ctr) (i64.extend_i32_u (local.get $i))) (i32.const 0)
        (i32.add (i32.const ${L.cvs}) (i32.shl (local.get $i) (i32.const 5))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $one)))
    (local.get $n))`)

  // ---------------------------------------------------------------------------------------
  // reduce: merges the $n CVs of the CV array up to $levels levels (or until one is left),
  // pairing neighbours and carrying an odd last CV. The final parent gets $root.
  emit(`  (func $reduce (param $n i32) (param $levels i32) (param $root i32)
    (local $pairs i32) (local $j i32) (local $flags i32)
    (block $done (loop $level
      (br_if $done (i32.le_u (local.get $n) (i32.const 1)))
      (br_if $done (i32.eqz (local.get $levels)))
      (local.set $pairs (i32.shr_u (local.get $n) (i32.const 1)))
      (local.set $j (i32.const 0))
      (block $d4 (loop $four
        (br_if $d4 (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $pairs)))
        (call $hash4 (i32.add (i32.const ${L.cvs}) (i32.shl (local.get $j) (i32.const 6))) (i32.const 64) (i32.const 1)
          (i64.const 0) (i32.const 0) (i32.const ${PARENT}) (i32.const 0) (i32.const 0)
          (i32.add (i32.const ${L.cvs}) (i32.shl (local.get $j) (i32.const 5))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $four)))
      (local.set $flags (i32.const ${PARENT}))
      (if (i32.eq (local.get $n) (i32.const 2)) (then (local.set $flags (i32.or (local.get $flags) (local.get $root)))))
      (block $d1 (loop $one
        (br_if $d1 (i32.ge_u (local.get $j) (local.get $pairs)))
        (call $compress1 (i32.const ${L.iv}) (i32.add (i32.const ${L.cvs}) (i32.shl (local.get $j) (i32.const 6)))
          (i32.const 0) (i32.const 0) (i32.const 64) (local.get $flags)
          (i32.add (i32.const ${L.cvs}) (i32.shl (local.get $j) (i32.const 5))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $one)))
      (if (i32.and (local.get $n) (i32.const 1)) (then
        (memory.copy (i32.add (i32.const ${L.cvs}) (i32.shl (local.get $pairs) (i32.const 5)))
          (i32.add (i32.const ${L.cvs}) (i32.shl (i32.sub (local.get $n) (i32.const 1)) (i32.const 5))) (i32.const 32))))
      (local.set $n (i32.add (local.get $pairs) (i32.and (local.get $n) (i32.const 1))))
      (local.set $levels (i32.sub (local.get $levels) (i32.const 1)))
      (br $level))))`)

  // ---------------------------------------------------------------------------------------
  // Exports. Counters come as two i32 halves so the glue never needs BigInt.
  emit(`  (func (export "subtree") (param $len i32) (param $lo i32) (param $hi i32) (param $root i32)
    (local $r i32)
    (local.set $r (select (i32.const ${ROOT}) (i32.const 0) (local.get $root)))
    (call $reduce
      (call $chunks (local.get $len) (i64.or (i64.extend_i32_u (local.get $lo)) (i64.shl (i64.extend_i32_u (local.get $hi)) (i64.const 32))) (local.get $r))
      (i32.const 64) (local.get $r)))`)
  emit(`  (func (export "groups") (param $len i32) (param $groupLog i32) (param $lo i32) (param $hi i32)
    (call $reduce
      (call $chunks (local.get $len) (i64.or (i64.extend_i32_u (local.get $lo)) (i64.shl (i64.extend_i32_u (local.get $hi)) (i64.const 32))) (i32.const 0))
      (local.get $groupLog) (i32.const 0)))`)
  emit(`  (func (export "parent") (param $root i32)
    (call $compress1 (i32.const ${L.iv}) (i32.const ${L.parentBlock}) (i32.const 0) (i32.const 0) (i32.const 64)
      (select (i32.const ${PARENT | ROOT}) (i32.const ${PARENT}) (local.get $root)) (i32.const ${L.cvs})))`)
  emit(')')
  return out.join('\n') + '\n'
}

/** Assembles the module with wabt (a dev dependency, loaded only here). */
export async function buildWasm (): Promise<Uint8Array> {
  const { default: wabtInit } = await import('wabt')
  const wabt = await wabtInit()
  const mod = wabt.parseWat('blake3.wat', generateWat(), { simd: true, bulk_memory: true })
  try {
    mod.validate()
    return mod.toBinary({ log: false, write_debug_names: false, canonicalize_lebs: true }).buffer.slice()
  } finally {
    mod.destroy()
  }
}

/** The text of `src/core/blake3/wasm-binary.ts` for a given binary. */
export function renderModule (binary: Uint8Array): string {
  const b64 = Buffer.from(binary).toString('base64')
  const lines: string[] = []
  for (let i = 0; i < b64.length; i += 100) lines.push(`  '${b64.slice(i, i + 100)}'`)
  return `/**
 * GENERATED FILE, do not edit. Produced by scripts/build-blake3-wasm.ts
 * (\`npx tsc -p . && node dist/scripts/build-blake3-wasm.js\`), which writes the WAT text and
 * assembles it with wabt. test/test-blake3-wasm-build.spec.ts checks this file is up to date.
 */

/** Memory layout of the module (byte offsets and sizes). */
export const LAYOUT = ${JSON.stringify(LAYOUT)} as const

/** The WebAssembly SIMD BLAKE3 module (${binary.length} bytes), base64. */
export const WASM_BASE64 =
${lines.join(' +\n')}
`
}

/** Path of the generated module in the source tree (from dist/scripts or scripts). */
export function outputPath (): string {
  const here = dirname(fileURLToPath(import.meta.url))
  const root = here.includes(join('dist', 'scripts')) ? join(here, '..', '..') : join(here, '..')
  return join(root, 'src', 'core', 'blake3', 'wasm-binary.ts')
}

if (process.argv[1] != null && fileURLToPath(import.meta.url) === process.argv[1]) {
  const binary = await buildWasm()
  writeFileSync(outputPath(), renderModule(binary))
  if (process.argv.includes('--wat')) writeFileSync(outputPath().replace(/\.ts$/, '.wat.tmp'), generateWat())
  console.log(`wrote ${outputPath()} (${binary.length} bytes of wasm)`)
}
