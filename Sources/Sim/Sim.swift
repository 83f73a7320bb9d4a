// Sim — the deterministic simulator.
//
// Owns: the seeded PRNG (the only randomness), SimDisk (an in-memory file system that knows what
// is durable and loses power per 512-byte sector), the virtual clock and event queue, the network,
// and SimZooKeeper (an in-memory ZooKeeper: sessions, ephemeral nodes, watches, expiry).
// Must never: touch the real file system, network, clock or system randomness.
