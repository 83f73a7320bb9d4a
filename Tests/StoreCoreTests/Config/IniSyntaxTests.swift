import Testing
@testable import StoreCore

extension ConfigTests {
    /// The line syntax ini4j gives server.ini (comments, trimming, separators, line ends).
    @Suite struct IniSyntax {
        @Test func commentsBlankLinesAndWhitespace() throws {
            let text = """
                ; a comment
                # another comment
                   ; an indented comment

                [system]
                \tbrokerId   =   7\t
                ;serverPort=1
                #serverPort=2
                  hostName = broker-1.example.com

                [ topic=test ]
                """
            let config = try ConfigTests.parse(text)
            #expect(config.brokerId == 7)
            #expect(config.serverPort == 8123)
            #expect(config.hostName == "broker-1.example.com")
            #expect(config.topics.map(\.name) == ["test"])
        }

        @Test func readerKeepsLineNumbers() throws {
            let sections = try IniReader.read("; c\n\n[system]\nbrokerId=1\n\n[topic=a]\nstat=true\n", path: "x")
            #expect(sections == [
                IniSection(name: "system", line: 3, entries: [IniEntry(key: "brokerId", value: "1", line: 4)]),
                IniSection(name: "topic=a", line: 6, entries: [IniEntry(key: "stat", value: "true", line: 7)]),
            ])
        }

        /// ini4j splits at the first `=` or `:`, whichever comes first.
        @Test func colonSeparatorAndSeparatorsInValues() throws {
            let text = """
                [system]
                brokerId: 3
                [zookeeper]
                zk.zkConnect=zk1:2181,zk2:2181/meta
                [topic=test]
                deleteWhen: 0 0 6,18 * * ?
                """
            let config = try ConfigTests.parse(text)
            #expect(config.brokerId == 3)
            #expect(config.zooKeeper.connect == "zk1:2181,zk2:2181/meta")
            #expect(config.topics[0].deleteWhen?.description == "0 0 6,18 * * ?")
        }

        @Test func crlfAndCarriageReturnLineEndsAndByteOrderMark() throws {
            let crlf = try ConfigTests.parse("\u{FEFF}[system]\r\nbrokerId=5\r\nserverPort=9000\r\n[topic=t]\r\n")
            #expect(crlf.brokerId == 5)
            #expect(crlf.serverPort == 9000)
            let cr = try ConfigTests.parse("[system]\rbrokerId=6\r[topic=t]\r")
            #expect(cr.brokerId == 6)
            let error = ConfigTests.error("[system]\r\nbrokerId=5\r\nbogus\r\n[topic=t]\r\n")
            #expect(error?.line == 3)
        }

        /// ini4j has no trailing comments: the text after `;` stays in the value.
        @Test func trailingCommentIsPartOfTheValue() throws {
            let config = try ConfigTests.parse("[system]\nbrokerId=1\nhostName=h1 ; primary\n[topic=t]\n")
            #expect(config.hostName == "h1 ; primary")
            let error = try #require(ConfigTests.error("[system]\nbrokerId=1\nnumPartitions=4 ; four\n[topic=t]\n"))
            #expect(error.kind == .badNumber)
            #expect(error.message.hasSuffix("(comments must be on a line of their own)"))
        }

        @Test func topicHeaderToleratesSpacesAroundTheEqualsSign() throws {
            let config = try ConfigTests.parse("[system]\nbrokerId=1\n[topic = orders ]\n")
            #expect(config.topics.map(\.name) == ["orders"])
        }
    }
}
