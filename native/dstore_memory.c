// What JavaScript cannot see of memory: where a buffer lies (the fs store's O_DIRECT reads and
// writes, src/core/store/fs/direct.ts, need buffers whose address is a multiple of the disk's
// block size, and carve them out of larger ones with this), how much of a file the page
// cache holds (so a read of a file it holds goes through it, and one of a file it does not
// hold goes past it), and backing a fresh buffer's pages in one call before a transfer fills
// it (src/core/prefault.ts).
#include "dstore_addon.h"

#if defined(__linux__)
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
// Linux 5.14; defined here for older headers (the kernel then answers EINVAL).
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#endif

// misalignment(view, alignment): the address of view's first byte modulo alignment (a power
// of two, at most 1 MiB). A view of an ArrayBuffer or SharedArrayBuffer larger than V8's
// on-heap limit (64 bytes) never moves, so the answer stays true for the buffer's life.
napi_value Misalignment(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!dstore_args_of(env, info, 2, argv, "misalignment")) return NULL;
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

// residentBytes(fd, offset, length): how many bytes of the pages covering file fd's bytes
// [offset, offset + length) the page cache holds (mincore over a read-only shared mapping,
// unmapped before it returns; whole pages, of whatever size this system's pages are), or -1
// where that cannot be told: not Linux, or a file this process neither owns nor runs as root
// for (since Linux 5.2, mincore then reports only pages mapped by this process, which a fresh
// mapping has none of). length is at most 1 GiB.
napi_value ResidentBytes(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!dstore_args_of(env, info, 3, argv, "residentBytes")) return NULL;
  uint64_t fd, offset, length;
  if (!dstore_whole_of(env, argv[0], "residentBytes: bad fd", &fd)) return NULL;
  if (!dstore_whole_of(env, argv[1], "residentBytes: bad offset", &offset)) return NULL;
  if (!dstore_whole_of(env, argv[2], "residentBytes: bad length", &length)) return NULL;
  if (fd > 0x7fffffff || length > (1u << 30) || offset > ((uint64_t)1 << 50)) {
    napi_throw_range_error(env, NULL, "residentBytes: fd, offset or length out of range");
    return NULL;
  }
  napi_value v;
#if defined(__linux__)
  struct stat st;
  if (fstat((int)fd, &st) != 0) return dstore_throw_errno(env, "residentBytes: fstat", errno);
  if (st.st_uid != geteuid() && geteuid() != 0) { CHECK(napi_create_double(env, -1, &v)); return v; }
  if (length == 0) { CHECK(napi_create_double(env, 0, &v)); return v; }
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  uint64_t start = offset & ~(page - 1);
  if ((uint64_t)(off_t)start != start) { napi_throw_range_error(env, NULL, "residentBytes: offset out of range"); return NULL; }
  size_t len = (size_t)(offset + length - start);
  size_t pages = (len + page - 1) / page;
  unsigned char *vec = malloc(pages);
  if (vec == NULL) { napi_throw_error(env, NULL, "residentBytes: out of memory"); return NULL; }
  void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, (int)fd, (off_t)start);
  if (map == MAP_FAILED) {
    int err = errno;
    free(vec);
    return dstore_throw_errno(env, "residentBytes: mmap", err);
  }
  int rc = mincore(map, len, vec);
  int err = errno;
  munmap(map, len);
  if (rc != 0) {
    free(vec);
    return dstore_throw_errno(env, "residentBytes: mincore", err);
  }
  uint64_t resident = 0;
  for (size_t i = 0; i < pages; i++) resident += vec[i] & 1;
  free(vec);
  CHECK(napi_create_double(env, (double)(resident * page), &v));
#else
  (void)fd; (void)offset;
  CHECK(napi_create_double(env, -1, &v));
#endif
  return v;
}

// prefault(view): makes the kernel back, in one call, every whole page inside view's memory
// with writable memory (madvise MADV_POPULATE_WRITE, Linux 5.14), and returns how many bytes it
// did: 0 where view holds no whole page; -1 where this system cannot (not Linux, or a kernel
// that does not know the advice: EINVAL); -2 where this call failed otherwise (memory pressure,
// an interrupted call). The bytes are unchanged. For memory not touched yet (a fresh
// ArrayBuffer about to be filled) this replaces a page fault per page, each a trap into the
// kernel (and, in a virtual machine, often out to the host), by one system call.
napi_value Prefault(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!dstore_args_of(env, info, 1, argv, "prefault")) return NULL;
  uint8_t *data;
  size_t len;
  if (!dstore_bytes_of(env, argv[0], "prefault: view must be a Uint8Array", &data, &len)) return NULL;
  double done = -1;
#if defined(__linux__)
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  // Only pages wholly inside the view: a page it shares with other memory is left alone.
  uintptr_t start = ((uintptr_t)data + page - 1) & ~(page - 1);
  uintptr_t end = ((uintptr_t)data + len) & ~(page - 1);
  if (len == 0 || end <= start) done = 0;
  else if (madvise((void *)start, end - start, MADV_POPULATE_WRITE) == 0) done = (double)(end - start);
  else done = errno == EINVAL ? -1 : -2;
#else
  (void)data; (void)len;
#endif
  napi_value v;
  CHECK(napi_create_double(env, done, &v));
  return v;
}
