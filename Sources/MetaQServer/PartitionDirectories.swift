import ArgumentParser
import Foundation
import ProtocolCore

/// What the offline partition tools share: the original's flags (`-dataDir -topic -start -end`),
/// the checks before anything is touched (no broker runs on the data directory, the topic is a
/// valid name before it becomes a path, the range is sane) and the directory names
/// `<dataDir>/<topic>-<partition>`.
struct PartitionRangeOptions: ParsableArguments {
    @Option(name: [.customLong("dataDir", withSingleDash: true), .customLong("data-dir")],
            help: "The broker's data directory (dataPath).")
    var dataDir: String

    @Option(name: [.customLong("topic", withSingleDash: true), .customLong("topic")], help: "The topic.")
    var topic: String

    @Option(name: [.customLong("start", withSingleDash: true), .customLong("start")], help: "The first partition.")
    var start: Int32

    @Option(name: [.customLong("end", withSingleDash: true), .customLong("end")], help: "The last partition.")
    var end: Int32

    func validate() throws {
        if let problem = MetaName.problem(with: topic) { throw ValidationError("invalid topic '\(topic)': \(problem)") }
        guard start >= 0, start <= end else { throw ValidationError("need 0 <= start <= end, got start \(start), end \(end)") }
        guard Int(end) - Int(start) < 65_536 else { throw ValidationError("at most 65536 partitions at once") }
    }

    func directory(_ partition: Int) -> String { "\(dataDir)/\(topic)-\(partition)" }

    /// Refuses while a broker runs on the data directory (its pid file names a live process).
    func requireStoppedBroker() throws {
        if let pid = readPid(dataPath: dataDir), isAlive(pid) {
            throw CommandFailure("a broker runs on \(dataDir) (pid \(pid)); stop it first (metaq-server stop --data \(dataDir))")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dataDir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CommandFailure("no data directory \(dataDir)")
        }
    }

    /// The partitions of the range whose directory exists.
    func existing() -> [Int] {
        (Int(start)...Int(end)).filter { FileManager.default.fileExists(atPath: directory($0)) }
    }
}

/// `metaq-server move-partitions -dataDir D -topic T -start a -end b -offset k`: the original's
/// offline renaming of `T-a … T-b` to `T-(a+k) … T-(b+k)`.
struct MovePartitions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "move-partitions",
        abstract: "Offline: rename a topic's partition directories start..end to start+offset..end+offset.",
        discussion: """
            Works on a stopped broker's data directory (refused while its pid file names a live process). \
            Every target must be free (or be one of the directories being moved); nothing is renamed when \
            one is not. Missing source directories are skipped.
            """)

    @OptionGroup var range: PartitionRangeOptions

    // `.unconditional`: `-offset -1` is a value, not an option.
    @Option(name: [.customLong("offset", withSingleDash: true), .customLong("offset")], parsing: .unconditional,
            help: "How far to move the partition numbers (may be negative).")
    var offset: Int32

    func validate() throws {
        guard offset != 0 else { throw ValidationError("-offset 0 moves nothing") }
        guard Int(range.start) + Int(offset) >= 0, Int(range.end) + Int(offset) <= Int(Int32.max) else {
            throw ValidationError("partitions \(range.start)..\(range.end) moved by \(offset) leave 0...\(Int32.max)")
        }
    }

    func run() throws {
        try range.requireStoppedBroker()
        let sources = range.existing()
        guard !sources.isEmpty else { throw CommandFailure("no directory \(range.topic)-\(range.start)..\(range.end) in \(range.dataDir)") }
        let moving = Set(sources)
        for source in sources {
            let target = source + Int(offset)
            if !moving.contains(target) && FileManager.default.fileExists(atPath: range.directory(target)) {
                throw CommandFailure("\(range.directory(target)) exists already; nothing was moved")
            }
        }
        // Moving up renames the highest first, moving down the lowest, so no rename hits a directory still to move.
        for source in offset > 0 ? sources.reversed() : sources {
            let target = source + Int(offset)
            do { try FileManager.default.moveItem(atPath: range.directory(source), toPath: range.directory(target)) } catch {
                throw CommandFailure("cannot rename \(range.directory(source)) to \(range.directory(target)): \(error.localizedDescription)")
            }
            print("moved \(range.topic)-\(source) to \(range.topic)-\(target)")
        }
    }
}

/// `metaq-server delete-partitions -dataDir D -topic T -start a -end b [-f]`: the original's
/// offline deletion of partition directories, asking first unless `-f`.
struct DeletePartitions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete-partitions",
        abstract: "Offline: delete a topic's partition directories start..end (asks y/n unless -f).",
        discussion: """
            Works on a stopped broker's data directory (refused while its pid file names a live process). \
            Their messages are gone for good.
            """)

    @OptionGroup var range: PartitionRangeOptions

    @Flag(name: [.customShort("f"), .customLong("force")], help: "Do not ask before deleting.")
    var force = false

    func run() throws {
        try range.requireStoppedBroker()
        let partitions = range.existing()
        guard !partitions.isEmpty else { throw CommandFailure("no directory \(range.topic)-\(range.start)..\(range.end) in \(range.dataDir)") }
        let names = partitions.map { "\(range.topic)-\($0)" }
        if !force {
            print("delete \(names.joined(separator: " ")) in \(range.dataDir)? (y/n) ", terminator: "")
            guard let reply = readLine()?.trimmingCharacters(in: .whitespaces).lowercased(), reply == "y" || reply == "yes" else {
                print("nothing deleted")
                return
            }
        }
        for partition in partitions {
            do { try FileManager.default.removeItem(atPath: range.directory(partition)) } catch {
                throw CommandFailure("cannot delete \(range.directory(partition)): \(error.localizedDescription)")
            }
            print("deleted \(range.topic)-\(partition)")
        }
    }
}
