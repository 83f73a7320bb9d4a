import ArgumentParser
import Foundation
import ProtocolCore

struct Produce: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send messages; prints `msgId partition offset` per message.",
        discussion: "Messages come from the arguments, or one per line from standard input when none are given.")

    @OptionGroup var server: ServerOption

    @Argument(help: "The topic.")
    var topic: String

    @Option(help: "Partition on the broker; -1 lets the broker choose.")
    var partition: Int32 = -1

    @Option(help: "An attribute to attach to every message.")
    var attribute: String?

    @Argument(help: "Messages (default: lines of standard input).")
    var messages: [String] = []

    func run() throws {
        let connection = try server.connect()
        var opaques = Opaques()
        var failures = 0
        func send(_ text: String) throws {
            let (flag, payload) = MessagePayload.encode(attribute: attribute, data: Array(text.utf8))
            let put = PutCommand(topic: topic, partition: partition, flag: flag, checksum: CRC32.metaqChecksum(payload),
                                 body: payload, opaque: opaques.take())
            guard case .result(let answer) = try connection.request(.put(put)) else { throw ValidationError("unexpected answer") }
            if answer.code == StatusCode.success {
                print(answer.text)
            } else {
                failures += 1
                FileHandle.standardError.write(Data("put to \(topic)-\(partition) on \(server.server) failed: \(answer.code) \(answer.text)\n".utf8))
            }
        }
        if messages.isEmpty {
            while let line = readLine() { try send(line) }
        } else {
            for message in messages { try send(message) }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}
