/** Options of the fs store (`FsBlobStore.open`). */
export interface FsStoreOptions {
  /** Folder of the store; created when missing. */
  path: string
  /**
   * Largest value kept inside the index rather than as a file. 0 keeps every non-empty value as a file.
   * @default 65536
   */
  inlineThreshold?: number
  /**
   * Wait for data and index to reach the disk (fsync, lmdb flush) before `put` and `delete`
   * resolve. Without it a process crash still loses nothing acknowledged, but an OS crash or
   * power loss may lose the latest puts (never corrupting older ones).
   * @default true
   */
  sync?: boolean
  /**
   * Worker threads that hash streamed values larger than one staging slot (4 MiB; a whole
   * `Uint8Array` is hashed on the main thread while it is written), so a large put
   * hashes on several cores while the main thread copies and the thread pool writes. Made at
   * the first large put, unreferenced while idle, terminated by `close`. 0 hashes on the main thread.
   * @default 0 with the native BLAKE3 backend (faster on the main thread); with WebAssembly,
   *   one less than the machine's cores, at most 4 (0 on one core)
   */
  hashWorkers?: number | undefined
  /**
   * Direct I/O (O_DIRECT, Linux) of file values, where the filesystem takes it (probed once)
   * and the native addon was built: puts write their files past the page cache (a put fsyncs
   * its data anyway, and the page cache's copy cost more CPU than hashing it), and a read of a
   * file the page cache does not hold goes past it too, until the value's second whole read
   * within a minute, which the page cache then keeps (docs/STORAGE.md, "Direct I/O"). Files
   * under 4 MiB always go through the page cache. False reads and writes through the page cache.
   * @default `sync`: without sync a put does not wait for the disk, and a direct write would
   *   make it wait
   */
  directIO?: boolean
  /**
   * Drop, at open, index entries whose data file is missing (so they are not listed).
   * `dstore verify` without `--repair` opens with false, so it reports them without changing
   * the index (`verify` then finds them as `missing`).
   * @default true
   */
  dropMissingFiles?: boolean
  /**
   * At open, re-hash data files that have no index entry (a lost index, an interrupted put or
   * delete) and index again those whose bytes match their name; quarantine the others. False
   * (`dstore verify` without `--repair`): only report them, as `unindexed` / `corrupt` problems.
   * @default true
   */
  reindexFiles?: boolean
  /** Where open's recovery says what it found and did (one line each). @default nothing */
  log?: (line: string) => void
}
