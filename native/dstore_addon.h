// dstore's native addon (build/Release/dstore_native.node): what its parts share. Written
// against Node-API only (no node-addon-api), so one build serves every Node version with
// Node-API 8; it is context-aware, so worker threads (src/core/blake3/worker.ts) load it too.
#ifndef DSTORE_ADDON_H
#define DSTORE_ADDON_H

#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

// Throws and returns NULL from a napi callback when a Node-API call fails.
#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "dstore-native: " #call " failed"); return NULL; } } while (0)

// The bytes of a Uint8Array argument (any view: the pointer includes its byte offset); false,
// with a TypeError pending, for anything else.
bool dstore_bytes_of(napi_env env, napi_value v, const char *what, uint8_t **data, size_t *len);

// The call's first n arguments into argv; false, with a TypeError naming `what` pending, when
// fewer were passed.
bool dstore_args_of(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *what);

// Throws an Error "<what> failed: <strerror(err)>"; returns NULL, for a callback to return.
napi_value dstore_throw_errno(napi_env env, const char *what, int err);

// A whole number in [0, 2^53) (counters, offsets and sizes arrive as JS numbers); false, with a
// RangeError pending, for anything else.
bool dstore_whole_of(napi_env env, napi_value v, const char *what, uint64_t *out);

// dstore_blake3.c: BLAKE3's subtree operations.
napi_value Subtree(napi_env env, napi_callback_info info);
napi_value Groups(napi_env env, napi_callback_info info);
napi_value Parent(napi_env env, napi_callback_info info);
napi_value SimdDegree(napi_env env, napi_callback_info info);

// dstore_memory.c: where a buffer lies in memory, how much of a file the page cache holds, and
// backing a fresh buffer's pages before it is filled.
napi_value Misalignment(napi_env env, napi_callback_info info);
napi_value ResidentBytes(napi_env env, napi_callback_info info);
napi_value Prefault(napi_env env, napi_callback_info info);

#endif
