import StoreCore

/// The bytes as the text of a server.ini (invalid UTF-8 replaced, as a reader that decodes
/// leniently would pass it on): the parser accepts it or refuses it with an error that names the
/// file, and never traps. What it accepts holds together.
public enum ConfigFuzz {
    public static func run(_ input: [UInt8]) {
        let text = String(decoding: input, as: UTF8.self)
        let config: ServerConfig
        do { config = try ServerConfig(parsing: text, path: "fuzz.ini") } catch {
            precondition(error.description.hasPrefix("fuzz.ini"), "an error that does not name the file: \(error)")
            return
        }
        precondition((0...1023).contains(config.brokerId), "brokerId \(config.brokerId) accepted")
        precondition(!config.topics.isEmpty, "a config without topics accepted")
        precondition(config.maxSegmentSize > 0 && config.maxTransferSize > 0, "a non-positive size accepted")
        for section in config.topics {
            precondition(!section.name.isEmpty && !section.name.contains("/"), "topic section \(section.name) accepted")
        }
    }
}
