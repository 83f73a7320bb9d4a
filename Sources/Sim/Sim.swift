// Sim — the deterministic simulator.
//
// Owns: the seeded PRNG (the only randomness), SimDisk (an in-memory file system that knows what
// is durable and loses power per 512-byte sector), and later the virtual clock, network and
// ZooKeeper.
// Must never: touch the real file system, network, clock or system randomness.
