import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A program the tests and the benchmark start (a server, the FastStream peer, a script, one
/// benchmark row), without Foundation's `Process`. Not part of the library: the test suite's and
/// courier-bench's support, kept in one place.
///
/// Why not `Process`: its pipes are read through `FileHandle.readabilityHandler`, a libdispatch
/// read source, and on Linux a read source that sees its pipe hang up (every time a child exits)
/// races libdispatch against itself: the manager thread keeps using the descriptor's "muxnote"
/// after it woke the source, whose worker thread unregisters it and frees it
/// (`_dispatch_source_invoke2` → `_dispatch_unote_unregister_muxed`). Under load the test process
/// died with SIGSEGV in `_dispatch_event_loop_drain` (one cold run in ten); with glibc filling freed
/// memory (`MALLOC_PERTURB_`) a small reproducer crashed every run, reading `0xa5a5…` at that
/// instruction, with Foundation's `Process` or plain `posix_spawn` alike, and never once the pipes
/// were read with blocking `read(2)` (swift-corelibs-libdispatch issue 949). The same handler can
/// also miss the end of output when the last bytes and the hang-up arrive together. So here a
/// child's output is read with blocking `read(2)` on a thread of its own and its exit is awaited
/// with `waitpid` on another: libdispatch never sees the child's descriptors.
///
/// The child also starts clean: every signal at its default disposition and none blocked (a child
/// inherits the spawning thread's blocked signals, and libdispatch's worker threads, which run the
/// tests, block nearly all of them: servers never saw the SIGTERM meant to stop them), no descriptor of ours beyond its
/// standard streams, and it stays in our process group, which `scripts/with-servers.sh` ends
/// whatever happens to the test process. Its pid is recorded in `COURIER_TEST_PIDS` (a folder
/// `with-servers.sh` makes) so that the same script can end it even if the test process crashed.
package final class ChildProcess: Sendable {
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    /// Where the child's standard output and error go.
    package enum Output: Equatable, Sendable {
        /// `/dev/null`.
        case discard
        /// Both to a pipe we read (``output``, ``waitForOutput(containing:)``).
        case capture
        /// Standard output to a pipe we read; standard error to the file at `errorPath` (made or
        /// truncated), or to ours when nil.
        case captureStandardOutput(errorPath: String?)
        /// Both to the file at this path (made or truncated): for a program that leaves others
        /// running with its output (a script starting a server in the background), whose pipe
        /// would never reach its end.
        case file(String)
    }

    package let pid: pid_t
    package let command: String
    private let inputDescriptor: Mutex<Int32?>
    private let captured = Mutex(CapturedOutput())
    private let exitState = Mutex(ExitState())
    /// Broadcast once the exit is known, for ``killAndWait()``'s blocking wait.
    private let exitCondition = NSCondition()

    private struct CapturedOutput {
        var text = ""
        var ended = false
        var waiters: [(fragment: String?, continuation: CheckedContinuation<Bool, Never>)] = []
    }

    private struct ExitState {
        var status: Int32?
        var waiters: [CheckedContinuation<Int32, Never>] = []
    }

    /// Starts `executable` (a path, or a name looked up in `PATH`) with `arguments`.
    /// - Parameters:
    ///   - directory: the child's working directory (ours when nil).
    ///   - output: where its standard output and error go.
    ///   - input: whether the child reads a pipe we can close (``closeInput()``) instead of `/dev/null`.
    package init(
        _ executable: String,
        _ arguments: [String],
        directory: String? = nil,
        output: Output = .discard,
        input: Bool = false
    ) throws {
        command = ([executable] + arguments).joined(separator: " ")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        // Our ends of the pipes are close-on-exec from the start: no other child started meanwhile
        // keeps them.
        var outputPipe: (read: Int32, write: Int32)?
        switch output {
        case .discard:
            posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0)
        case .capture:
            outputPipe = try Self.pipe()
            posix_spawn_file_actions_adddup2(&actions, outputPipe!.write, STDOUT_FILENO)
            posix_spawn_file_actions_adddup2(&actions, outputPipe!.write, STDERR_FILENO)
        case .file(let path):
            posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO)
        case .captureStandardOutput(let errorPath):
            outputPipe = try Self.pipe()
            posix_spawn_file_actions_adddup2(&actions, outputPipe!.write, STDOUT_FILENO)
            if let errorPath {
                posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            }
        }
        var inputPipe: (read: Int32, write: Int32)?
        if input {
            inputPipe = try Self.pipe()
            posix_spawn_file_actions_adddup2(&actions, inputPipe!.read, STDIN_FILENO)
        } else {
            posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        }
        // Nothing else of ours: not the test process's sockets, not a descriptor another thread
        // opens while this spawn runs without close-on-exec.
        GNU.addCloseFrom(&actions, 3)
        if let directory { GNU.addChdir(&actions, directory) }

        var allSignals = sigset_t()
        sigfillset(&allSignals)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var spawned: pid_t = 0
        let result = posix_spawnp(&spawned, executable, &actions, &attributes, argv, environ)
        if let outputPipe { close(outputPipe.write) }
        if let inputPipe { close(inputPipe.read) }
        guard result == 0 else {
            if let outputPipe { close(outputPipe.read) }
            if let inputPipe { close(inputPipe.write) }
            throw Failure(description: "could not start \(command): \(String(cString: strerror(result)))")
        }
        let child = spawned
        pid = child
        inputDescriptor = Mutex(inputPipe?.write)
        Self.record(pid)

        // The threads keep the child's object until it exited and its output ended.
        Self.thread("wait \(child)") { self.awaitExit() }
        if let outputPipe {
            Self.thread("read \(child)") { self.readOutput(from: outputPipe.read) }
        }
    }

    /// Reaps the child (on its own thread) and wakes whoever waits for its exit.
    private func awaitExit() {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        // The shell's convention: the exit code, or 128 + the signal that ended it.
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        Self.forget(pid)
        let waiters = exitState.withLock { state in
            state.status = code
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: code) }
        exitCondition.lock()
        exitCondition.broadcast()
        exitCondition.unlock()
    }

    /// Reads the child's output until it ends (on its own thread), waking the waiters it satisfies.
    private func readOutput(from descriptor: Int32) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            let chunk = count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
            let ready = captured.withLock { state -> [(CheckedContinuation<Bool, Never>, Bool)] in
                if let chunk { state.text += chunk } else { state.ended = true }
                let text = state.text
                let ended = state.ended
                var ready: [(CheckedContinuation<Bool, Never>, Bool)] = []
                state.waiters.removeAll { waiter in
                    if let fragment = waiter.fragment, text.contains(fragment) {
                        ready.append((waiter.continuation, true))
                        return true
                    }
                    if ended {
                        ready.append((waiter.continuation, false))
                        return true
                    }
                    return false
                }
                return ready
            }
            for (continuation, found) in ready { continuation.resume(returning: found) }
            if chunk == nil { break }
        }
        close(descriptor)
    }

    deinit {
        if let descriptor = inputDescriptor.withLock({ $0.take() }) { close(descriptor) }
    }

    /// Everything the child wrote so far (with ``Output/capture``).
    package var output: String { captured.withLock { $0.text } }

    /// Waits until the child's output contains `fragment` (true), or its output ended without it
    /// (false: it exited or closed its output). With nil, waits for the end of its output.
    @discardableResult
    package func waitForOutput(containing fragment: String?) async -> Bool {
        await withCheckedContinuation { continuation in
            let answer: Bool? = captured.withLock { state in
                if let fragment, state.text.contains(fragment) { return true }
                if state.ended { return false }
                state.waiters.append((fragment, continuation))
                return nil
            }
            if let answer { continuation.resume(returning: answer) }
        }
    }

    /// Whether the child has not exited yet.
    package var isRunning: Bool { exitState.withLock { $0.status == nil } }

    /// Waits for the child to exit; its exit code, or 128 + the signal that ended it.
    @discardableResult
    package func exited() async -> Int32 {
        await withCheckedContinuation { continuation in
            let status: Int32? = exitState.withLock { state in
                if let status = state.status { return status }
                state.waiters.append(continuation)
                return nil
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// Sends `signal` to the child (nothing once it has exited and been reaped).
    package func signal(_ signal: Int32) {
        exitState.withLock { state in
            // Not once its exit was seen: its pid may belong to another process by then.
            if state.status == nil { _ = Glibc.kill(pid, signal) }
        }
    }

    /// Kills the child outright (SIGKILL, as a crash would) and waits for it to exit.
    package func kill() async {
        signal(SIGKILL)
        await exited()
    }

    /// Kills the child outright and blocks the calling thread until it has exited (a few
    /// milliseconds after SIGKILL): for `defer` blocks and `deinit`, which cannot wait otherwise.
    package func killAndWait() {
        signal(SIGKILL)
        exitCondition.lock()
        while isRunning { exitCondition.wait() }
        exitCondition.unlock()
    }

    /// Closes the child's standard input (with `input: true`): end of input for it.
    package func closeInput() {
        if let descriptor = inputDescriptor.withLock({ $0.take() }) { close(descriptor) }
    }

    /// Runs a program to completion without blocking a thread of Swift's cooperative pool; throws
    /// with its output when it fails. Its output goes to a file, read once it exited: a program
    /// may leave a server running in the background with the same output (scripts/rabbitmq.sh
    /// does), so the end of a pipe could be far later than the program's own end.
    @discardableResult
    package static func run(_ executable: String, _ arguments: [String], directory: String? = nil) async throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString).log").path
        defer { unlink(file) }
        let child = try ChildProcess(executable, arguments, directory: directory, output: .file(file))
        let status = await child.exited()
        let output = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw Failure(description: "\(child.command) exited with \(status): \(output.suffix(2000))")
        }
        return output
    }

    private static func pipe() throws -> (read: Int32, write: Int32) {
        var descriptors: [Int32] = [0, 0]
        guard GNU.pipe2(&descriptors, O_CLOEXEC) == 0 else {
            throw Failure(description: "pipe2 failed: \(String(cString: strerror(errno)))")
        }
        return (descriptors[0], descriptors[1])
    }

    private static func thread(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.name = name
        thread.stackSize = 256 * 1024
        thread.start()
    }

    /// The folder `scripts/with-servers.sh` ends recorded children from: a file per child, named by
    /// its pid, holding its start time (so a later process that got the same pid is left alone).
    private static let recordFolder = ProcessInfo.processInfo.environment["COURIER_TEST_PIDS"]

    private static func record(_ pid: pid_t) {
        guard let recordFolder, let start = startTime(of: pid) else { return }
        try? start.write(toFile: "\(recordFolder)/\(pid)", atomically: false, encoding: .utf8)
    }

    private static func forget(_ pid: pid_t) {
        guard let recordFolder else { return }
        unlink("\(recordFolder)/\(pid)")
    }

    /// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
    private static func startTime(of pid: pid_t) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let end = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        // After the command: field 3 is the state, so the start time (22) is the 20th.
        return fields.count > 19 ? String(fields[19]) : nil
    }
}

/// glibc's GNU extensions that Swift's Glibc module does not import (they are declared only with
/// `_GNU_SOURCE`), looked up by name: Debian 12's glibc 2.36 has all three.
private enum GNU {
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32

    private static func function<F>(_ name: String, as type: F.Type) -> F {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else {
            fatalError("glibc has no \(name) (2.34 or later needed)")
        }
        return unsafeBitCast(symbol, to: type)
    }

    // The symbols' addresses are plain values: no state is shared through them.
    nonisolated(unsafe) private static let closeFrom = function("posix_spawn_file_actions_addclosefrom_np", as: AddCloseFrom.self)
    nonisolated(unsafe) private static let chdir = function("posix_spawn_file_actions_addchdir_np", as: AddChdir.self)
    nonisolated(unsafe) private static let pipe2Function = function("pipe2", as: Pipe2.self)

    /// Every descriptor from `lowest` up is closed in the child (`close_range`).
    static func addCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ lowest: Int32) {
        _ = closeFrom(actions, lowest)
    }

    /// The child starts in `directory`.
    static func addChdir(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ directory: String) {
        _ = directory.withCString { chdir(actions, $0) }
    }

    static func pipe2(_ descriptors: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32 {
        pipe2Function(descriptors, flags)
    }
}
