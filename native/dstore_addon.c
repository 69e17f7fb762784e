// dstore's native addon: registers the entry points of its parts (dstore_addon.h) and holds the
// argument checks they share.
#include "dstore_addon.h"

#include <stdio.h>
#include <string.h>

bool dstore_args_of(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *what) {
  size_t argc = n;
  char msg[64];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) {
    snprintf(msg, sizeof(msg), "%s: %zu arguments expected", what, n);
    napi_throw_type_error(env, NULL, msg);
    return false;
  }
  return true;
}

napi_value dstore_throw_errno(napi_env env, const char *what, int err) {
  char msg[128];
  snprintf(msg, sizeof(msg), "%s failed: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

bool dstore_bytes_of(napi_env env, napi_value v, const char *what, uint8_t **data, size_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) {
    napi_throw_type_error(env, NULL, what);
    return false;
  }
  napi_typedarray_type type;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, v, &type, len, &ptr, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, what);
    return false;
  }
  *data = ptr;
  return true;
}

bool dstore_whole_of(napi_env env, napi_value v, const char *what, uint64_t *out) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0 && d < 9007199254740992.0) || d != (double)(uint64_t)d) {
    napi_throw_range_error(env, NULL, what);
    return false;
  }
  *out = (uint64_t)d;
  return true;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "subtree", NULL, Subtree, NULL, NULL, NULL, napi_enumerable, NULL },
    { "groups", NULL, Groups, NULL, NULL, NULL, napi_enumerable, NULL },
    { "parent", NULL, Parent, NULL, NULL, NULL, napi_enumerable, NULL },
    { "simdDegree", NULL, SimdDegree, NULL, NULL, NULL, napi_enumerable, NULL },
    { "misalignment", NULL, Misalignment, NULL, NULL, NULL, napi_enumerable, NULL },
    { "residentBytes", NULL, ResidentBytes, NULL, NULL, NULL, napi_enumerable, NULL },
    { "prefault", NULL, Prefault, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}
