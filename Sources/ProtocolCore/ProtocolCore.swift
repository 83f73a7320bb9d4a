// ProtocolCore — MetaQ's wire format, record format, checksums and message ids, as pure values.
//
// Owns: every request/response of the MetaQ 1.4.6 text protocol (reference §1), the on-disk and
// on-wire record layout (§1.5), CRC32, and message id generation (§2.1).
// Must never: import Foundation/Glibc/Dispatch/NIO, perform I/O, read a clock or draw randomness.
// Time and randomness are parameters; the runtime and the simulator drive everything here.
