// Where a buffer lies in memory, which JavaScript cannot see: the fs store's O_DIRECT writes
// (src/core/store/fs/direct.ts) need buffers whose address is a multiple of the disk's block
// size, and carve them out of larger ones with this.
#include "dstore_addon.h"

// misalignment(view, alignment): the address of view's first byte modulo alignment (a power
// of two, at most 1 MiB). A view of an ArrayBuffer or SharedArrayBuffer larger than V8's
// on-heap limit (64 bytes) never moves, so the answer stays true for the buffer's life.
napi_value Misalignment(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) { napi_throw_type_error(env, NULL, "misalignment: 2 arguments expected"); return NULL; }
  uint8_t *data;
  size_t len;
  uint64_t alignment;
  if (!dstore_bytes_of(env, argv[0], "misalignment: view must be a Uint8Array", &data, &len)) return NULL;
  if (!dstore_whole_of(env, argv[1], "misalignment: bad alignment", &alignment)) return NULL;
  if (alignment == 0 || alignment > (1u << 20) || (alignment & (alignment - 1)) != 0) {
    napi_throw_range_error(env, NULL, "misalignment: the alignment must be a power of two, at most 1 MiB");
    return NULL;
  }
  napi_value v;
  CHECK(napi_create_uint32(env, (uint32_t)((uintptr_t)data & (uintptr_t)(alignment - 1)), &v));
  return v;
}
