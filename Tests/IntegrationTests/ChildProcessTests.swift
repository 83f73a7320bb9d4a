import Foundation
import Testing
import ProcessHarness

/// The harness every integration test starts processes with: exit statuses, bounded waits,
/// redirections, and what the child inherits.
@Suite("ChildProcess (posix_spawn, reaped by pid)")
struct ChildProcessTests {
    @Test func exitCodeIsTheTerminationStatus() throws {
        let child = ChildProcess("/bin/sh", ["-c", "exit 3"])
        #expect(!child.isRunning && child.terminationStatus == nil, "not started yet")
        try child.run()
        #expect(child.processIdentifier > 0)
        #expect(child.waitUntilExit(timeoutSeconds: 10))
        #expect(child.termination == .exited(3))
        #expect(child.terminationStatus == 3 && child.terminationSignal == nil)
        #expect(throws: HarnessError.self) { try child.run() }
    }

    /// Foundation's meaning: after a signal death the status is the signal number.
    @Test func signalDeathIsReportedAndNoSignalGoesToAReapedPid() throws {
        let child = ChildProcess("/bin/sleep", ["30"])
        try child.run()
        #expect(child.isRunning)
        #expect(child.send(SIGKILL))
        #expect(child.waitUntilExit(timeoutSeconds: 10))
        #expect(child.terminationSignal == SIGKILL && child.terminationStatus == SIGKILL)
        #expect(!child.send(SIGTERM), "the pid may belong to another process by now")
    }

    @Test func waitUntilExitGivesUpAtItsTimeout() throws {
        let child = ChildProcess("/bin/sleep", ["300"])
        try child.run()
        defer { LocalProcess.kill9(child) }
        // A deadline against waiting for the child's exit (300 s), not a speed check.
        let started = ContinuousClock.now
        #expect(!child.waitUntilExit(timeoutSeconds: 0.3))
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(LocalProcess.stop(child, graceSeconds: 5) == SIGTERM, "sleep dies of SIGTERM")
    }

    @Test func inputBytesAndOutputPipe() throws {
        let echoed = try ChildProcess.run("/bin/cat", [], input: Array("hello\nworld".utf8))
        #expect(echoed.status == 0 && echoed.output == Array("hello\nworld".utf8))
        let merged = try ChildProcess.run("/bin/sh", ["-c", "echo out; echo err >&2"], error: .standardOutput)
        #expect(String(decoding: merged.output, as: UTF8.self) == "out\nerr\n")
        let dropped = try ChildProcess.run("/bin/sh", ["-c", "echo out; echo err >&2"])
        #expect(String(decoding: dropped.output, as: UTF8.self) == "out\n")
    }

    @Test func outputFileIsAppendedTo() throws {
        let directory = try LocalProcess.makeTemporaryDirectory(prefix: "metaq-child")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = directory + "/log"
        for word in ["one", "two"] {
            let child = ChildProcess("/bin/sh", ["-c", "echo \(word); echo \(word)-err >&2"], output: .file(log), error: .standardOutput)
            try child.run()
            #expect(child.waitUntilExit(timeoutSeconds: 10) && child.terminationStatus == 0)
        }
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "one\none-err\ntwo\ntwo-err\n")
    }

    /// A child that never closes its output cannot hang the reader.
    @Test func readingOutputIsBounded() throws {
        let child = ChildProcess("/bin/sleep", ["30"], output: .pipe)
        try child.run()
        #expect(throws: HarnessError.self) { try child.readOutput(timeoutSeconds: 0.3) }
        #expect(child.waitUntilExit(timeoutSeconds: 10) && child.terminationSignal == SIGKILL)
    }

    /// A signal the test runner blocks is not blocked in the child (POSIX_SPAWN_SETSIGMASK), one it
    /// ignores is not ignored (POSIX_SPAWN_SETSIGDEF; SIG_IGN survives exec), and a descriptor the
    /// runner opened without O_CLOEXEC is not inherited.
    @Test func childStartsWithDefaultSignalsAndNoStrayDescriptors() throws {
        var block = sigset_t(), previous = sigset_t()
        sigemptyset(&block)
        sigaddset(&block, SIGUSR1)
        pthread_sigmask(SIG_BLOCK, &block, &previous)
        let disposition = signal(SIGUSR2, SIG_IGN)
        let stray = open("/dev/null", O_RDONLY)
        defer {
            close(stray)
            signal(SIGUSR2, disposition)
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        #expect(stray > 3)
        let status = try ChildProcess.run("/bin/grep", ["^Sig\\(Blk\\|Ign\\)", "/proc/self/status"])
        let masks = String(decoding: status.output, as: UTF8.self).split(separator: "\n")
            .map { UInt64($0.split(separator: "\t").last ?? "", radix: 16) }
        #expect(masks.count == 2 && masks[0] == 0, "nothing blocked: \(masks)")
        // Bit n-1 is signal n. glibc keeps its own two signals (32, 33) as they are.
        #expect(masks.count == 2 && (masks[1] ?? 1) & 0x7fff_ffff == 0, "no standard signal ignored: \(masks)")
        // ls itself opens one directory, which gets the lowest free number: 3.
        let descriptors = try ChildProcess.run("/bin/ls", ["/proc/self/fd"])
        #expect(String(decoding: descriptors.output, as: UTF8.self).split(separator: "\n") == ["0", "1", "2", "3"])
    }

    /// What once hung Foundation's `Process`: many children spawned and reaped at the same time.
    @Test func concurrentSpawnsAreAllReaped() async throws {
        let statuses = try await withThrowingTaskGroup(of: Int32?.self) { group in
            for index in 0..<24 {
                group.addTask {
                    let child = ChildProcess("/bin/sh", ["-c", "exit \(index % 5)"])
                    try child.run()
                    guard child.waitUntilExit(timeoutSeconds: 20) else { return nil }
                    return child.terminationStatus
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses.count == 24)
        #expect(statuses.compactMap { $0 }.sorted() == (0..<24).map { Int32($0 % 5) }.sorted())
    }
}
