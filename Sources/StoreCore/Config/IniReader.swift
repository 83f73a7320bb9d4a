// The line syntax of server.ini, as MetaQ reads it through ini4j (`org.ini4j.spi.IniSource`,
// `IniParser`, `AbstractParser`), without any knowledge of which sections or keys exist.
//
// Rules kept from ini4j:
// - Every line is trimmed; blank lines are skipped.
// - A comment is a whole line whose first character is `;` or `#`. There are no trailing comments:
//   ini4j checks only the first character, so in `numPartitions=4 ; four` the `; four` is part of
//   the value (and MetaQ then fails to evaluate it). We keep that meaning and let the value's own
//   check report it, with a hint.
// - `[name]` opens a section; the name is trimmed. A line starting with `[` must end with `]`.
// - An option is split at the first `=` or `:` (ini4j accepts both); key and value are trimmed, the
//   key must not be empty, and a line without either separator is an error.
// - An option before the first section is an error (ini4j's default has no global section).
// Not kept: ini4j's backslash escapes (`\t`, `\uXXXX`, a trailing `\` joining the next line). They
// matter only for Windows paths and multi-line values, which no MetaQ config relies on, so a
// backslash is rejected rather than silently read in a different way than MetaQ would.

/// One `key=value` line, trimmed.
struct IniEntry: Equatable, Sendable {
    let key: String
    /// Empty for `key=`; what "blank" means is up to the key.
    let value: String
    /// 1-based line number.
    let line: Int
}

/// One `[name]` header and the entries after it, in file order.
struct IniSection: Equatable, Sendable {
    /// The text between the brackets, trimmed.
    let name: String
    let line: Int
    var entries: [IniEntry]
}

enum IniReader {
    /// Splits `text` into sections. `path` is only used in error messages. Repeated headers come back
    /// as separate sections; the caller refuses them (ini4j would keep only one).
    static func read(_ text: String, path: String) throws(ConfigError) -> [IniSection] {
        var sections: [IniSection] = []
        var lineNumber = 0
        for rawLine in lines(of: text) {
            lineNumber += 1
            let line = trimmed(rawLine)
            guard let first = line.first, first != ";", first != "#" else { continue }
            if line.contains("\\") {
                throw ConfigError(kind: .malformedLine, path: path, line: lineNumber, section: sections.last?.name,
                                  message: "backslash escapes and line continuations are not supported: '\(line)'")
            }
            if first == "[" {
                sections.append(try header(line, lineNumber: lineNumber, path: path))
                continue
            }
            let entry = try option(line, lineNumber: lineNumber, section: sections.last?.name, path: path)
            guard !sections.isEmpty else {
                throw ConfigError(kind: .keyOutsideSection, path: path, line: lineNumber, key: entry.key,
                                  message: "key outside any section; put it under [system], [zookeeper], "
                                      + "[replication] or [topic=<name>]")
            }
            sections[sections.count - 1].entries.append(entry)
        }
        return sections
    }

    private static func header(_ line: Substring, lineNumber: Int, path: String) throws(ConfigError) -> IniSection {
        let name = line.count >= 2 && line.last == "]" ? trimmed(line.dropFirst().dropLast()) : ""
        guard !name.isEmpty else {
            throw ConfigError(kind: .malformedLine, path: path, line: lineNumber,
                              message: "expected a section header such as [system] or [topic=<name>], got '\(line)'")
        }
        return IniSection(name: String(name), line: lineNumber, entries: [])
    }

    private static func option(_ line: Substring, lineNumber: Int, section: String?,
                               path: String) throws(ConfigError) -> IniEntry {
        guard let separator = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
            throw ConfigError(kind: .malformedLine, path: path, line: lineNumber, section: section,
                              message: "expected key=value, got '\(line)'")
        }
        let key = trimmed(line[..<separator])
        guard !key.isEmpty else {
            throw ConfigError(kind: .malformedLine, path: path, line: lineNumber, section: section,
                              message: "expected key=value with a key before '\(line[separator])', got '\(line)'")
        }
        return IniEntry(key: String(key), value: String(trimmed(line[line.index(after: separator)...])),
                        line: lineNumber)
    }

    /// Lines end at `\n`, `\r\n` or `\r`, like Java's `BufferedReader.readLine`. A leading byte-order
    /// mark is dropped, as ini4j's `UnicodeInputStreamReader` does.
    private static func lines(of text: String) -> [Substring] {
        var body = Substring(text)
        if body.first == "\u{FEFF}" { body = body.dropFirst() }
        return body.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
    }

    private static func trimmed(_ text: Substring) -> Substring { text.trimmedOfWhitespace }
}
