import CourierChildProcess
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A program the bench runs to completion — itself for one row (``RowProcesses``), FastStream's
/// script — started by ``ChildProcess`` (posix_spawn, its output read with blocking `read(2)` and
/// its exit awaited with `waitpid` on threads of their own, not Foundation's `Process`, whose pipe
/// handlers crash libdispatch under load; see that type). The child starts clean: no descriptor
/// of ours beyond its standard streams, every signal at its default and none blocked. It stays in
/// our process group, so an interrupt at the terminal ends it too.
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
        let child = try ChildProcess(executable, arguments, output: .captureStandardOutput(errorPath: errorPath))
        let status = await child.exited()
        await child.waitForOutput(containing: nil)
        return Result(status: status, output: child.output)
    }

    /// This program's own executable, to run it again for one row.
    static var ownExecutable: String {
        var path = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &path, path.count - 1)
        guard length > 0 else { return CommandLine.arguments[0] }
        return String(decoding: path[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
