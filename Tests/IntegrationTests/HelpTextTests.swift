import Foundation
import ProcessHarness
import Testing

/// The executables' help: every command explains itself, and none points users at section numbers
/// of a document they do not have (the compatibility reference is for the developers).
@Suite("Help texts of the executables")
struct HelpTextTests {
    static let commands: [(product: String, arguments: [String])] =
        [("metaq", []), ("metaq-server", []), ("metaq-sim", [])]
        + ["produce", "consume", "stats", "cluster", "recover", "offsets", "bench", "bench-group", "tx"].map { ("metaq", [$0]) }
        + ["list", "commit", "rollback"].map { ("metaq", ["tx", $0]) }
        + ["start", "stop", "status", "stats", "slave-status", "reload", "close-partitions", "open-partitions", "move-partitions",
           "delete-partitions"].map { ("metaq-server", [$0]) }

    @Test(arguments: commands.indices)
    func helpExplainsWithoutSectionNumbers(_ index: Int) throws {
        let (product, arguments) = Self.commands[index]
        let result = try ChildProcess.run(BrokerProcess.product(product), arguments + ["--help"], error: .standardOutput)
        let text = String(decoding: result.output, as: UTF8.self)
        #expect(result.status == 0, "\(product) \(arguments) --help: \(text)")
        #expect(text.contains("USAGE:"), "\(text)")
        #expect(!text.contains("§") && !text.lowercased().contains("reference §"), "\(product) \(arguments): \(text)")
    }
}
