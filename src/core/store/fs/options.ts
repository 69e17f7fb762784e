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
   * Write large values' files with O_DIRECT, past the page cache, where the filesystem takes it
   * (probed at the first large put) and the native addon was built: a put fsyncs its data
   * anyway, and the page cache's copy cost more CPU than hashing it (docs/STORAGE.md). False
   * always writes through the page cache. A value just put directly is not in the page cache,
   * so its first read goes to the disk.
   * @default true
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
