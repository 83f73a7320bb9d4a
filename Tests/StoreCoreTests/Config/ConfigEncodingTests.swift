import Testing
@testable import StoreCore

extension ConfigTests {
    /// server.ini must be UTF-8: the first invalid sequence is reported with its line and byte
    /// (issue 14), where MetaQ would have replaced it silently.
    @Suite struct Encoding {
        private func error(_ bytes: [UInt8]) throws -> ConfigError {
            do throws(ConfigError) {
                _ = try ServerConfig(parsing: bytes, path: ConfigTests.path)
            } catch {
                return error
            }
            Issue.record("accepted")
            throw ConfigError(kind: .malformedLine, path: "", line: nil, message: "accepted")
        }

        private func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }

        @Test func latin1ByteIsReportedWithLineAndByte() throws {
            let latin1 = utf8("[system]\nbrokerId=1\nhostName=caf") + [0xE9] + utf8("\n[topic=t]\n")
            let e = try error(latin1)
            #expect(e.kind == .invalidEncoding && e.line == 3 && e.key == nil)
            #expect(e.description == "conf/test.ini:3: not UTF-8: invalid byte sequence e9 at byte 13 of the line "
                + "(byte 33 of the file); save the file as UTF-8")
        }

        @Test func linesAreCountedAsTheParserCountsThem() throws {
            #expect(try error(utf8("[system]\r\nbrokerId=1\r\n") + [0xFF]).line == 3)
            #expect(try error(utf8("[system]\rbrokerId=1\r\r") + [0x41, 0xC3, 0x28]).line == 4)
            #expect(try error(utf8("[system]\rbrokerId=1\r\r") + [0x41, 0xC3, 0x28]).message.hasPrefix(
                "not UTF-8: invalid byte sequence c3 at byte 2 of the line"))
            #expect(try error([0xC0, 0xAF]).line == 1, "an overlong encoding is invalid")
        }

        @Test func utf16IsNamed() throws {
            let e = try error([0xFF, 0xFE] + utf8("[").flatMap { [$0, 0] })
            #expect(e.line == 1 && e.message == "not UTF-8: the file starts with a UTF-16 byte-order mark (ff fe); save it as UTF-8")
        }

        @Test func utf8WithAndWithoutByteOrderMarkParses() throws {
            let text = "[system]\nbrokerId=1\nhostName=café.example\n[topic=t]\n"
            #expect(try ServerConfig(parsing: utf8(text), path: ConfigTests.path).hostName == "café.example")
            #expect(try ServerConfig(parsing: [0xEF, 0xBB, 0xBF] + utf8(text), path: ConfigTests.path).brokerId == 1)
        }
    }
}
