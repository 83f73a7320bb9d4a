// Runtime — the Linux runtime, the only module with real I/O, clocks and threads.
//
// Owns: the storage interface on real files (pwrite/pread/fdatasync/mmap via swift-system and
// Glibc), retention archiving with zlib; later the SwiftNIO server, the ZooKeeper client, signals.
// Must never: contain business rules — it drives the ProtocolCore/StoreCore machines and feeds
// their completions back as events.
