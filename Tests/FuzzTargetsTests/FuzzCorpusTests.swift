import Foundation
import FuzzTargets
import Sim
import Testing

/// The fuzz targets in every test run, without libFuzzer: the committed corpus (seed inputs and
/// every finding ever kept), then seeded mutations of it that favour the bytes the broker cares
/// about — path-like topic names, separators, numbers at their limits. `scripts/fuzz.sh` runs the
/// same targets under libFuzzer with coverage guidance.
///
/// A broken invariant traps the test process. Each input is written to `lastInputPath` before it
/// runs, so after a crash `metaq-fuzz <that file>` replays it.
@Suite("Fuzz targets over the corpus and seeded mutations", .serialized)
struct FuzzCorpusTests {
    static let corpusDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus").path
    static let lastInputPath = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-fuzz-last-input").path

    static func corpus() throws -> [(name: String, bytes: [UInt8])] {
        let names = try FileManager.default.contentsOfDirectory(atPath: corpusDirectory).sorted()
        return try names.map { name in
            let data = try Data(contentsOf: URL(fileURLWithPath: corpusDirectory + "/" + name))
            return (name, Array(data))
        }
    }

    static func run(_ input: [UInt8]) {
        _ = FileManager.default.createFile(atPath: lastInputPath, contents: Data(input))
        FuzzTargets.run(input)
    }

    @Test func corpusCoversEveryTarget() throws {
        let corpus = try Self.corpus()
        let targets = Set(corpus.compactMap { $0.bytes.first.flatMap { FuzzTargets.Target(rawValue: $0) } })
        #expect(targets == Set(FuzzTargets.Target.allCases), "seed inputs for every target: \(corpus.map(\.name))")
    }

    @Test func corpusRunsClean() throws {
        print("fuzz corpus: if this test crashes, replay the input with: metaq-fuzz \(Self.lastInputPath)")
        for (_, bytes) in try Self.corpus() { Self.run(bytes) }
    }

    /// The journal target reaches the replay: its seed inputs are scripts the journal opens and
    /// replays whole, or up to the cut the input asks for.
    @Test func journalSeedsAreReplayed() throws {
        let seeds = try Self.corpus().filter { $0.name.hasPrefix("journal-") }
        let replayed = seeds.map { (name: $0.name, count: JournalFuzz.run(Array($0.bytes.dropFirst()))) }
        #expect(replayed.first { $0.name == "journal-script" }?.count ?? 0 > 10, "\(replayed)")
        #expect(replayed.first { $0.name == "journal-torn" }?.count ?? 0 > 0, "\(replayed)")
    }

    /// `METAQ_FUZZ_SEED` / `METAQ_FUZZ_COUNT` choose another sweep (by hand, or to replay).
    @Test func seededMutationsRunClean() throws {
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["METAQ_FUZZ_SEED"].flatMap(UInt64.init) ?? 20_261_205
        let count = environment["METAQ_FUZZ_COUNT"].flatMap(Int.init) ?? 3_000
        print("fuzz sweep seed \(seed), \(count) inputs; after a crash: metaq-fuzz \(Self.lastInputPath)")
        let corpus = try Self.corpus().map(\.bytes)
        var random = SimRandom(seed: seed)
        for _ in 0..<count {
            var input = random.pick(corpus)
            for _ in 0..<random.int(in: 1...6) { Mutator.mutate(&input, &random, corpus: corpus) }
            Self.run(input)
        }
    }
}

/// Byte-level mutations, with a bias towards what a hostile client would send the broker.
enum Mutator {
    static let tokens: [[UInt8]] = [
        "../", "/", "..", ".", "\0", " ", "  ", "\r\n", "\r", "\n", "-", "*", "@", "w-", "test", "-1",
        "0", "2147483647", "-2147483648", "9223372036854775807", "99999999999999999999", "put ", "get ",
        "offset ", "stats ", "transaction ", "sync ", "result ", "value ", String(repeating: "x", count: 130),
        "w-/../../escaped", "w-a/b", "/etc/passwd", "é", "\u{7F}",
    ].map { Array($0.utf8) }

    static func mutate(_ input: inout [UInt8], _ random: inout SimRandom, corpus: [[UInt8]]) {
        // The first byte picks the target; mutate after it (and, rarely, it too).
        let start = input.count > 1 && !random.chance(0.02) ? 1 : 0
        let at = input.count > start ? random.int(in: start...input.count) : input.count
        switch random.int(in: 0..<7) {
        case 0: input.insert(contentsOf: random.pick(tokens), at: at)
        case 1: if at < input.count { input[at] ^= UInt8(1 << random.int(in: 0..<8)) }
        case 2: if at < input.count { input[at] = UInt8(truncatingIfNeeded: random.next()) }
        case 3: input.removeSubrange(at..<min(input.count, at + random.int(in: 1...16)))
        case 4:
            let other = random.pick(corpus)
            let from = other.count > 1 ? random.int(in: 1..<other.count) : 0
            input.insert(contentsOf: other[from..<min(other.count, from + random.int(in: 1...64))], at: at)
        case 5: input.insert(contentsOf: random.bytes(random.int(in: 1...8)), at: at)
        default:
            let digits = Array(String(random.int(in: -3...5000)).utf8)
            input.insert(contentsOf: digits, at: at)
        }
        if input.count > 16_384 { input.removeLast(input.count - 16_384) }
    }
}
