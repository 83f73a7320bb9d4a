// StoreCore — the partition log and its policies, as pure logic over the `Storage` interface.
//
// Owns: segments in MetaQ's byte format (reference §2), append/read/roll, flush policy and group
// commit decisions, recovery on open (torn tails, damage isolation), retention and its cron, and
// the parser of MetaQ's `server.ini` (text in, typed `ServerConfig` out; the runtime reads files).
// Must never: import Foundation/Glibc/Dispatch/NIO or make a syscall — every byte goes through
// `Storage`; never read a clock (time is a parameter).
