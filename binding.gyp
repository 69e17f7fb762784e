# dstore's native addon: the BLAKE3 backend (native/dstore_blake3.c on the vendored BLAKE3 C
# implementation), and the buffer addresses and page-cache residency the fs store's O_DIRECT
# reads and writes need (native/dstore_memory.c), built at install by scripts/build-native.mjs
# with npm's own node-gyp. Optional: when it cannot be built, dstore hashes with its
# WebAssembly backend (src/core/blake3/index.ts) and the fs store reads and writes through the
# page cache.
{
  "targets": [
    {
      "target_name": "dstore_native",
      "sources": [
        "native/dstore_addon.c",
        "native/dstore_blake3.c",
        "native/dstore_memory.c",
        "native/blake3/blake3.c",
        "native/blake3/blake3_dispatch.c",
        "native/blake3/blake3_portable.c"
      ],
      "cflags": ["-O3"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O3"] },
      "conditions": [
        ["target_arch=='x64' and OS!='win'", {
          "sources": [
            "native/blake3/blake3_sse2_x86-64_unix.S",
            "native/blake3/blake3_sse41_x86-64_unix.S",
            "native/blake3/blake3_avx2_x86-64_unix.S",
            "native/blake3/blake3_avx512_x86-64_unix.S"
          ]
        }],
        ["target_arch=='arm64'", {
          "sources": ["native/blake3/blake3_neon.c"],
          "defines": ["BLAKE3_USE_NEON=1"]
        }],
        ["target_arch!='x64' or OS=='win'", {
          "defines": ["BLAKE3_NO_SSE2", "BLAKE3_NO_SSE41", "BLAKE3_NO_AVX2", "BLAKE3_NO_AVX512"]
        }]
      ]
    }
  ]
}
