import Glibc
import Synchronization

/// A child process for the tests (integration tests, and unit tests that run a tool such as
/// `unzip`), spawned with `posix_spawn` and reaped by its own
/// pid only.
///
/// Why not Foundation's `Process`: its termination monitoring (swift-corelibs-foundation) missed
/// exits when several suites spawned at once; `waitUntilExit()` then spun for ever with
/// `isRunning` true although the child had exited. Here nothing waits on a notification: every
/// `isRunning` asks the kernel with `waitpid(pid, WNOHANG)`, and every wait has a bound.
public final class ChildProcess {
    /// Where the child's standard input comes from.
    public enum Input {
        case inherit
        case nullDevice
        /// These bytes, then end of file: written into a pipe before the spawn, so the child can
        /// never block the test on a full pipe and a child that exits early raises no SIGPIPE here.
        case bytes([UInt8])
    }

    /// Where the child's standard output or error goes.
    public enum Output {
        case inherit
        case nullDevice
        /// Appended to this file, created if missing.
        case file(String)
        /// A pipe; read it with `readOutput(timeoutSeconds:)`. Standard output only.
        case pipe
        /// Wherever standard output goes. Standard error only.
        case standardOutput
    }

    /// How the child ended.
    public enum Termination: Equatable {
        case exited(Int32)
        case signaled(Int32)
        /// Something else reaped it (`waitpid` said ECHILD), so its status is lost.
        case unknown
    }

    private enum State {
        case notStarted
        case running(pid_t)
        case ended(pid_t, Termination)
    }

    public var executable = ""
    public var arguments: [String] = []
    /// nil: the parent's environment (`environ`).
    public var environment: [String: String]?
    /// Not inherited by default: a child that read the test runner's input could wait for ever.
    public var standardInput = Input.nullDevice
    public var standardOutput = Output.inherit
    public var standardError = Output.inherit

    private let state = Mutex(State.notStarted)
    /// The read end of the standard output pipe, until `readOutput` reaches its end.
    private var outputDescriptor: Int32?

    public init() {}

    public init(_ executable: String, _ arguments: [String], output: Output = .inherit, error: Output = .inherit) {
        self.executable = executable
        self.arguments = arguments
        standardOutput = output
        standardError = error
    }

    deinit {
        if let outputDescriptor { close(outputDescriptor) }
        // Reap if it has already exited, so no zombie outlives its harness.
        _ = isRunning
    }

    /// The pid once started (0 before, like Foundation's `Process`).
    public var processIdentifier: pid_t {
        state.withLock {
            switch $0 {
            case .notStarted: 0
            case .running(let pid), .ended(let pid, _): pid
            }
        }
    }

    /// Whether the child was started and has not been reaped; reaps it if it has exited.
    public var isRunning: Bool {
        if case .running = reap() { return true }
        return false
    }

    /// How it ended; nil while running or before it started.
    public var termination: Termination? {
        if case .ended(_, let termination) = reap() { return termination }
        return nil
    }

    /// Foundation's meaning: the exit code, or the signal number if a signal ended it. nil while
    /// running, before it started, or when its status was lost.
    public var terminationStatus: Int32? {
        switch termination {
        case .exited(let code)?, .signaled(let code)?: code
        case .unknown?, nil: nil
        }
    }

    /// The signal that ended it, nil if it exited by itself (or has not ended).
    public var terminationSignal: Int32? {
        if case .signaled(let signal)? = termination { return signal }
        return nil
    }

    /// Sends `signal` unless the child was already reaped (its pid could then belong to another
    /// process). Whether it was sent.
    @discardableResult
    public func send(_ signal: Int32) -> Bool {
        state.withLock {
            guard case .running(let pid) = $0 else { return false }
            return kill(pid, signal) == 0
        }
    }

    /// Polls until the child has exited; false if it still runs after `timeoutSeconds`.
    public func waitUntilExit(timeoutSeconds: Double) -> Bool {
        let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
        var pause: UInt32 = 2_000
        while isRunning {
            guard ContinuousClock.now < deadline else { return false }
            usleep(pause)
            pause = min(pause * 2, 50_000)
        }
        return true
    }

    /// `waitpid(pid, WNOHANG)` for this child only (never -1: another harness's child is not ours
    /// to reap); caches how it ended.
    private func reap() -> State {
        state.withLock { state in
            guard case .running(let pid) = state else { return state }
            var status: Int32 = 0
            var result: pid_t
            repeat { result = waitpid(pid, &status, WNOHANG) } while result == -1 && errno == EINTR
            if result == pid {
                state = .ended(pid, Self.termination(status))
            } else if result == -1 {
                state = .ended(pid, .unknown)
            }
            return state
        }
    }

    /// Decodes a wait status (the WIFEXITED/WTERMSIG macros are not imported into Swift).
    private static func termination(_ status: Int32) -> Termination {
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }
}

extension ChildProcess {
    /// Spawns the child. Its signal mask is emptied and every signal's disposition reset: the test
    /// runner's threads block SIGTERM, SIGINT, SIGHUP and others, and a child inheriting that
    /// mask would never see the SIGTERM of `LocalProcess.stop`.
    public func run() throws {
        guard case .notStarted = state.withLock({ $0 }) else { throw HarnessError("\(executable) already started") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var parentEnds: [Int32] = []
        defer { for fd in parentEnds { close(fd) } }
        try redirectInput(&actions, closeAfterSpawn: &parentEnds)
        try redirect(standardOutput, to: 1, &actions, closeAfterSpawn: &parentEnds)
        try redirect(standardError, to: 2, &actions, closeAfterSpawn: &parentEnds)
        // Descriptors the parent opened without O_CLOEXEC (sockets of other tests) stay out.
        _ = GNU.addCloseFrom(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for pointer in argv + (envp ?? []) { free(pointer) } }
        var pid: pid_t = 0
        let error = envp.map { posix_spawn(&pid, executable, &actions, &attributes, argv, $0) }
            ?? posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard error == 0 else {
            if let outputDescriptor { close(outputDescriptor) }
            outputDescriptor = nil
            throw HarnessError("posix_spawn \(executable): \(String(cString: strerror(error)))")
        }
        state.withLock { $0 = .running(pid) }
    }

    private func redirectInput(_ actions: inout posix_spawn_file_actions_t, closeAfterSpawn: inout [Int32]) throws {
        switch standardInput {
        case .inherit:
            break
        case .nullDevice:
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        case .bytes(let bytes):
            // A pipe holds 64 KiB; a fuller one would block here, before the child even runs.
            guard bytes.count <= 65_536 else { throw HarnessError("input over 64 KiB") }
            let (read, write) = try Self.makePipe()
            closeAfterSpawn.append(read)
            defer { close(write) }
            var written = 0
            while written < bytes.count {
                let count = bytes[written...].withUnsafeBytes { Glibc.write(write, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { throw HarnessError("write to stdin pipe: \(String(cString: strerror(errno)))") }
                written += count
            }
            posix_spawn_file_actions_adddup2(&actions, read, 0)
        }
    }

    private func redirect(_ output: Output, to fd: Int32, _ actions: inout posix_spawn_file_actions_t,
                          closeAfterSpawn: inout [Int32]) throws {
        switch output {
        case .inherit:
            break
        case .nullDevice:
            posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
        case .file(let path):
            posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        case .standardOutput:
            guard fd == 2 else { throw HarnessError("standard output cannot go to itself") }
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .pipe:
            guard fd == 1, outputDescriptor == nil else { throw HarnessError("only standard output can be a pipe") }
            let (read, write) = try Self.makePipe()
            outputDescriptor = read
            closeAfterSpawn.append(write)
            posix_spawn_file_actions_adddup2(&actions, write, 1)
        }
    }

    /// O_CLOEXEC on both ends: a child spawned concurrently by another test must not inherit the
    /// write end, or this pipe would never see end of file.
    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard GNU.pipe2(&fds, O_CLOEXEC) == 0 else { throw HarnessError("pipe2: \(String(cString: strerror(errno)))") }
        return (fds[0], fds[1])
    }

    /// Reads the standard output pipe to end of file. After `timeoutSeconds` without end of file
    /// the child is killed and this throws, rather than wait for ever.
    public func readOutput(timeoutSeconds: Double = 120) throws -> [UInt8] {
        guard let fd = outputDescriptor else { throw HarnessError("standard output is not a pipe") }
        defer { close(fd); outputDescriptor = nil }
        let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else {
                send(SIGKILL)
                throw HarnessError("\(executable) \(arguments): no end of output after \(timeoutSeconds) s")
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(min(remaining.components.seconds * 1000 + 1, 1_000))
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0 && errno != EINTR { throw HarnessError("poll: \(String(cString: strerror(errno)))") }
            guard ready > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count == 0 { return output }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw HarnessError("read: \(String(cString: strerror(errno)))")
            }
            output += buffer[..<count]
        }
    }

    /// Runs to completion: the exit status and standard output, read to end of file before the
    /// child is reaped (a full pipe would otherwise block it). Throws after `timeoutSeconds`.
    public static func run(_ executable: String, _ arguments: [String], input: [UInt8]? = nil, error: Output = .nullDevice,
                    timeoutSeconds: Double = 120) throws -> (status: Int32, output: [UInt8]) {
        let child = ChildProcess(executable, arguments, output: .pipe, error: error)
        if let input { child.standardInput = .bytes(input) }
        try child.run()
        let output = try child.readOutput(timeoutSeconds: timeoutSeconds)
        // End of output usually means exit; a child that closed its output and lingers is killed.
        if !child.waitUntilExit(timeoutSeconds: 10) {
            _ = child.send(SIGKILL)
            _ = child.waitUntilExit(timeoutSeconds: 10)
            throw HarnessError("\(executable) \(arguments) did not exit after closing its output")
        }
        guard let status = child.terminationStatus else { throw HarnessError("\(executable): exit status lost") }
        return (status, output)
    }
}

/// glibc functions that Swift's Glibc module leaves out (they are declared only under
/// `_GNU_SOURCE`), looked up by name.
enum GNU {
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    /// `pipe2(2)`: O_CLOEXEC set atomically, with no window in which a concurrent spawn inherits it.
    public static var pipe2: Pipe2 { unsafeBitCast(symbol("pipe2"), to: Pipe2.self) }

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34).
    public static var addCloseFrom: AddCloseFrom { unsafeBitCast(symbol("posix_spawn_file_actions_addclosefrom_np"), to: AddCloseFrom.self) }

    private static func symbol(_ name: String) -> UnsafeMutableRawPointer {
        guard let address = dlsym(nil, name) else { fatalError("glibc has no \(name)") }
        return address
    }
}

/// A failure of the test harness itself (a child that cannot be started, reaped or read).
public struct HarnessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
