// Fuzz targets: what the broker does with bytes it did not choose — frames from the wire, a
// server.ini, segment files found on disk. Each target takes one input and traps (precondition)
// when an invariant breaks; a crash, a hang or unbounded memory is a finding.
//
// Run by libFuzzer (`scripts/fuzz.sh`, the `metaq-fuzz` executable built with -sanitize=fuzzer)
// and, without libFuzzer, by `Tests/FuzzTargetsTests` over the corpus in `Fuzz/corpus` and seeded
// mutations of it, so every CI run replays what was ever found.

/// The fuzz targets, chosen by the first byte of an input.
public enum FuzzTargets {
    public enum Target: UInt8, CaseIterable, Sendable {
        /// Frames in random chunkings through the frame decoder and the broker machine over an
        /// in-memory disk (`BrokerWireFuzz`).
        case brokerWire = 0
        /// The bytes as the text of a server.ini (`ConfigFuzz`).
        case config = 1
        /// The bytes as the last segment of a partition found at start: recovery, then reads.
        case recovery = 2
        /// The bytes drive a script of transaction redo-log entries, cut and changed where the
        /// input says: the journal's recovery and the transaction machine's replay (`JournalFuzz`).
        case journal = 3
    }

    /// Runs the target the first byte names (modulo the number of targets) on the rest.
    public static func run(_ input: [UInt8]) {
        guard let first = input.first else { return }
        let rest = Array(input.dropFirst())
        switch Target(rawValue: first % UInt8(Target.allCases.count))! {
        case .brokerWire: BrokerWireFuzz.run(rest)
        case .config: ConfigFuzz.run(rest)
        case .recovery: RecoveryFuzz.run(rest)
        case .journal: JournalFuzz.run(rest)
        }
    }

    /// `input` for `target`: the selector byte in front.
    public static func input(_ target: Target, _ body: [UInt8]) -> [UInt8] {
        [target.rawValue] + body
    }
}
