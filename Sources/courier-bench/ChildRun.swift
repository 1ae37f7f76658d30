import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A program the bench runs to completion — itself for one row (``RowProcesses``), FastStream's
/// script — started with `posix_spawn`, its standard output read through a pipe with blocking
/// `read(2)` and its exit awaited with `waitpid`, on a thread of its own.
///
/// Not Foundation's `Process`: on Linux it watches its pipes with libdispatch sources, which is
/// implicated in a libdispatch crash (`_dispatch_event_loop_drain`) when processes are spawned
/// while dispatch sources are active; here libdispatch never sees the child's descriptors.
///
/// The child starts clean: standard input from `/dev/null`, no descriptor of ours beyond its
/// standard streams, every signal at its default disposition and none blocked (a child inherits
/// ignored and blocked signals). It stays in our process group, so an interrupt at the terminal
/// ends it too.
enum ChildRun {
    struct Result: Sendable {
        /// The exit code, or 128 + the signal that ended the child (the shell's convention).
        var status: Int32
        /// Everything it wrote to its standard output.
        var output: String
    }

    /// Runs `executable` (a path) with `arguments` until it exits, without holding a thread of
    /// Swift's cooperative pool; its standard error goes to the file at `errorPath`, or to ours
    /// when nil.
    static func run(_ executable: String, _ arguments: [String], errorPath: String? = nil) async throws -> Result {
        try await onThread { try runBlocking(executable, arguments, errorPath: errorPath) }
    }

    private static func runBlocking(_ executable: String, _ arguments: [String], errorPath: String?) throws -> Result {
        let command = ([executable] + arguments).joined(separator: " ")
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else {
            throw BenchError("pipe failed: \(String(cString: strerror(errno)))")
        }
        let (readEnd, writeEnd) = (descriptors[0], descriptors[1])
        // Close-on-exec (Swift's Glibc module has no pipe2): a program the process starts
        // otherwise keeps our ends. The bench starts one child at a time, from this thread only.
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, STDOUT_FILENO)
        if let errorPath {
            posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        }
        // Nothing else of ours (sockets, the OTLP receiver's): glibc 2.34's closefrom action.
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        close(writeEnd)
        guard spawned == 0 else {
            close(readEnd)
            throw BenchError("could not start \(command): \(String(cString: strerror(spawned)))")
        }

        // Until the end of its output (the child exited, or closed its standard output).
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(readEnd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            output += buffer[..<count]
        }
        close(readEnd)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, output: String(decoding: output, as: UTF8.self))
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc
    /// module does not declare (it is a GNU extension); nil where the C library has none.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        // dlsym(RTLD_DEFAULT, …): RTLD_DEFAULT is the null handle in glibc.
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// This program's own executable, to run it again for one row.
    static var ownExecutable: String {
        var path = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &path, path.count - 1)
        guard length > 0 else { return CommandLine.arguments[0] }
        return String(decoding: path[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
