// dstore's native BLAKE3 backend: the three subtree operations of src/core/blake3/interface.ts
// (subtreeCV, groupCVs, parentCV) on the official BLAKE3 C implementation (native/blake3/,
// vendored unchanged from BLAKE3-team/BLAKE3 1.8.6), which picks AVX-512, AVX2, SSE4.1, SSE2
// or NEON at run time. It hashes the caller's bytes where they are: no copy into a module
// memory, as the WebAssembly backend must make.
//
// Its entry points are registered by dstore_addon.c. Every one checks its arguments and throws
// a TypeError or RangeError instead of reading or writing out of bounds.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "blake3/blake3_impl.h"
#include "dstore_addon.h"

// Enough room for the widest array of CVs blake3_compress_subtree_wide returns, and for the
// first level of parents reduced from it.
#define WIDE_CVS (2 * MAX_SIMD_DEGREE_OR_2)

static void store_cv(const uint32_t cv[8], uint8_t out[BLAKE3_OUT_LEN]) {
  for (int i = 0; i < 8; i++) {
    out[4 * i + 0] = (uint8_t)(cv[i]);
    out[4 * i + 1] = (uint8_t)(cv[i] >> 8);
    out[4 * i + 2] = (uint8_t)(cv[i] >> 16);
    out[4 * i + 3] = (uint8_t)(cv[i] >> 24);
  }
}

// Parent CV of the 64-byte block `block` (left CV then right CV); the BLAKE3 hash with ROOT.
static void parent_cv(const uint8_t block[BLAKE3_BLOCK_LEN], bool root, uint8_t out[BLAKE3_OUT_LEN]) {
  uint32_t cv[8];
  memcpy(cv, IV, sizeof(cv));
  blake3_compress_in_place(cv, block, BLAKE3_BLOCK_LEN, 0, (uint8_t)(PARENT | (root ? ROOT : 0)));
  store_cv(cv, out);
}

// Chaining value (never root) of the subtree of `len` bytes whose first chunk is `counter`.
// blake3_compress_subtree_wide hashes it SIMD-wide down to at most WIDE_CVS CVs (one for a
// single chunk); pairing neighbours up from there, an odd last CV carried up unchanged, builds
// BLAKE3's left-heavy tree, as the library's own compress_subtree_to_parent_node does.
static void subtree_cv(const uint8_t *input, size_t len, uint64_t counter, uint8_t out[BLAKE3_OUT_LEN]) {
  uint8_t cvs[WIDE_CVS * BLAKE3_OUT_LEN];
  size_t n = blake3_compress_subtree_wide(input, len, IV, counter, 0, cvs, false);
  while (n > 1) {
    size_t pairs = n / 2;
    const uint8_t *inputs[WIDE_CVS];
    for (size_t i = 0; i < pairs; i++) inputs[i] = &cvs[2 * i * BLAKE3_OUT_LEN];
    uint8_t next[WIDE_CVS * BLAKE3_OUT_LEN];
    blake3_hash_many(inputs, pairs, 1, IV, 0, false, PARENT, 0, 0, next);
    if (n & 1) memcpy(&next[pairs * BLAKE3_OUT_LEN], &cvs[(n - 1) * BLAKE3_OUT_LEN], BLAKE3_OUT_LEN);
    n = pairs + (n & 1);
    memcpy(cvs, next, n * BLAKE3_OUT_LEN);
  }
  memcpy(out, cvs, BLAKE3_OUT_LEN);
}

// --- Node-API glue -----------------------------------------------------------------------------

// The arguments subtree and groups share: (data, chunkCounter, <own>, out, outOffset), all
// checked; `own` is left to the caller. False once an exception is pending.
typedef struct {
  napi_value own;
  uint8_t *data, *out;
  size_t len, out_len;
  uint64_t counter, offset;
} tree_args;

static bool tree_args_of(napi_env env, napi_callback_info info, const char *what, tree_args *a) {
  napi_value argv[5];
  char msg[64];
  if (!dstore_args_of(env, info, 5, argv, what)) return false;
  a->own = argv[2];
  snprintf(msg, sizeof(msg), "%s: data must be a Uint8Array", what);
  if (!dstore_bytes_of(env, argv[0], msg, &a->data, &a->len)) return false;
  snprintf(msg, sizeof(msg), "%s: bad chunk counter", what);
  if (!dstore_whole_of(env, argv[1], msg, &a->counter)) return false;
  snprintf(msg, sizeof(msg), "%s: out must be a Uint8Array", what);
  if (!dstore_bytes_of(env, argv[3], msg, &a->out, &a->out_len)) return false;
  snprintf(msg, sizeof(msg), "%s: bad output offset", what);
  return dstore_whole_of(env, argv[4], msg, &a->offset);
}

// subtree(data, chunkCounter, isRoot, out, outOffset): writes the subtree's CV (with isRoot,
// the BLAKE3 hash of data; then chunkCounter must be 0) into out at outOffset.
napi_value Subtree(napi_env env, napi_callback_info info) {
  tree_args a;
  bool root = false;
  if (!tree_args_of(env, info, "subtree", &a)) return NULL;
  if (napi_get_value_bool(env, a.own, &root) != napi_ok) { napi_throw_type_error(env, NULL, "subtree: isRoot must be a boolean"); return NULL; }
  if (a.offset + BLAKE3_OUT_LEN > a.out_len) { napi_throw_range_error(env, NULL, "subtree: out too short"); return NULL; }
  if (root) {
    if (a.counter != 0) { napi_throw_range_error(env, NULL, "subtree: a root starts at chunk 0"); return NULL; }
    blake3_hasher h;
    blake3_hasher_init(&h);
    blake3_hasher_update(&h, a.data, a.len);
    blake3_hasher_finalize(&h, a.out + a.offset, BLAKE3_OUT_LEN);
  } else {
    if (a.len == 0) { napi_throw_range_error(env, NULL, "subtree: an empty subtree is only a root"); return NULL; }
    subtree_cv(a.data, a.len, a.counter, a.out + a.offset);
  }
  return NULL;
}

// groups(data, chunkCounter, groupLog, out, outOffset): CVs of the consecutive full subtrees
// of 2^groupLog chunks that data holds exactly, into out at outOffset.
napi_value Groups(napi_env env, napi_callback_info info) {
  tree_args a;
  uint64_t group_log = 0;
  if (!tree_args_of(env, info, "groups", &a)) return NULL;
  if (!dstore_whole_of(env, a.own, "groups: bad group log", &group_log)) return NULL;
  // dstore's groups are at most 2^20 chunks (MAX_GROUP_LOG, src/core/bao/range.ts); the bound also
  // keeps group_len from overflowing a 32-bit size_t.
  if (group_log > 20) { napi_throw_range_error(env, NULL, "groups: bad group log"); return NULL; }
  size_t group_len = (size_t)BLAKE3_CHUNK_LEN << group_log;
  if (a.len % group_len != 0) { napi_throw_type_error(env, NULL, "groupCVs needs whole groups"); return NULL; }
  size_t count = a.len / group_len;
  if (a.offset + count * BLAKE3_OUT_LEN > a.out_len) { napi_throw_range_error(env, NULL, "groups: out too short"); return NULL; }
  for (size_t g = 0; g < count; g++) {
    subtree_cv(a.data + g * group_len, group_len, a.counter + ((uint64_t)g << group_log), a.out + a.offset + g * BLAKE3_OUT_LEN);
  }
  return NULL;
}

// parent(left, right, isRoot, out, outOffset): the parent CV of two 32-byte child CVs.
napi_value Parent(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!dstore_args_of(env, info, 5, argv, "parent")) return NULL;
  uint8_t *left, *right, *out;
  size_t left_len, right_len, out_len;
  uint64_t offset;
  bool root = false;
  if (!dstore_bytes_of(env, argv[0], "parent: left must be a Uint8Array", &left, &left_len)) return NULL;
  if (!dstore_bytes_of(env, argv[1], "parent: right must be a Uint8Array", &right, &right_len)) return NULL;
  if (left_len != BLAKE3_OUT_LEN || right_len != BLAKE3_OUT_LEN) { napi_throw_type_error(env, NULL, "parentCV needs two 32-byte CVs"); return NULL; }
  if (napi_get_value_bool(env, argv[2], &root) != napi_ok) { napi_throw_type_error(env, NULL, "parent: isRoot must be a boolean"); return NULL; }
  if (!dstore_bytes_of(env, argv[3], "parent: out must be a Uint8Array", &out, &out_len)) return NULL;
  if (!dstore_whole_of(env, argv[4], "parent: bad output offset", &offset)) return NULL;
  if (offset + BLAKE3_OUT_LEN > out_len) { napi_throw_range_error(env, NULL, "parent: out too short"); return NULL; }
  uint8_t block[BLAKE3_BLOCK_LEN];
  memcpy(block, left, BLAKE3_OUT_LEN);
  memcpy(block + BLAKE3_OUT_LEN, right, BLAKE3_OUT_LEN);
  parent_cv(block, root, out + offset);
  return NULL;
}

// simdDegree(): how many chunks the selected kernel hashes at once (16: AVX-512, 8: AVX2, ...).
napi_value SimdDegree(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  CHECK(napi_create_uint32(env, (uint32_t)blake3_simd_degree(), &v));
  return v;
}
