// Runtime — the Linux runtime, the only module with real I/O, clocks and threads.
//
// Owns: the storage interface on real files (pwrite/pread/fdatasync/mmap via swift-system and
// Glibc), retention archiving with zlib, the ZooKeeper session over the C client (ZooKeeper/);
// later the SwiftNIO server, signals.
// Must never: contain business rules — it drives the ProtocolCore/StoreCore machines and feeds
// their completions back as events.
