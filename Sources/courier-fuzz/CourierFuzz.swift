import CourierFuzzSupport
import Foundation

#if COURIER_LIBFUZZER
import CCourierFuzz
#endif

/// The fuzz targets of Courier's parsers (see `FuzzTarget`).
///
/// Built by `make fuzz` (libFuzzer's instrumentation, its `fuzzer_no_main` runtime and
/// `-D COURIER_LIBFUZZER`, see scripts/fuzz.sh), it is a libFuzzer binary whose main hands over to
/// `LLVMFuzzerRunDriver`: `COURIER_FUZZ_TARGET=<target> courier-fuzz [libFuzzer flags] [corpus]`.
/// Built plainly (as `swift build` does), it runs the same harnesses in a seeded loop of generated
/// and mutated inputs, and writes the seed corpus:
///
///     courier-fuzz <target>|all [--runs N] [--seed S]
///     courier-fuzz <target> --replay FILE...
///     courier-fuzz seeds DIR
@main
struct CourierFuzz {
    static func main() {
        #if COURIER_LIBFUZZER
        runLibFuzzer()
        #else
        runLoop(Array(CommandLine.arguments.dropFirst()))
        #endif
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(2)
    }

    /// The peak resident set of this process, in MiB.
    static var peakRSSMegabytes: Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss / 1024  // KiB on Linux
        #else
        getrusage(RUSAGE_SELF, &usage)
        return usage.ru_maxrss / (1024 * 1024)  // bytes on Darwin
        #endif
    }
}

#if COURIER_LIBFUZZER

/// The target libFuzzer drives, chosen before the driver starts.
let selectedTarget: FuzzTarget? = ProcessInfo.processInfo.environment["COURIER_FUZZ_TARGET"].flatMap(FuzzTarget.init(rawValue:))

extension CourierFuzz {
    static func runLibFuzzer() {
        guard let target = selectedTarget else {
            fail("set COURIER_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var arguments = CommandLine.arguments
        // The target knows how long an input is worth trying; a flag given wins.
        if !arguments.contains(where: { $0.hasPrefix("-max_len=") }) {
            arguments.insert("-max_len=\(target.maximumInputLength)", at: 1)
        }
        // libFuzzer keeps argv for the whole run (and may re-exec with it): copies that live as long as the process.
        var pointers: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var argc = Int32(arguments.count)
        pointers.withUnsafeMutableBufferPointer { buffer in
            var argv = buffer.baseAddress
            exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
        }
    }
}

/// libFuzzer's callback: one input through the selected target; a broken invariant is a crash,
/// which libFuzzer reports and saves the input of.
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do throws(FuzzFailure) {
        try selectedTarget!.runBlocking(input)
    } catch {
        fatalError("\(error)")
    }
    return 0
}

#else

extension CourierFuzz {
    static func runLoop(_ arguments: [String]) {
        guard let first = arguments.first else {
            fail("usage: courier-fuzz <target>|all [--runs N] [--seed S] | <target> --replay FILE... | seeds DIR")
        }
        if first == "seeds" {
            guard arguments.count == 2 else { fail("usage: courier-fuzz seeds DIR") }
            writeSeeds(to: URL(fileURLWithPath: arguments[1]))
            return
        }
        let targets: [FuzzTarget]
        if first == "all" {
            targets = FuzzTarget.allCases
        } else if let target = FuzzTarget(rawValue: first) {
            targets = [target]
        } else {
            fail("unknown target '\(first)'; one of: all, \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if arguments.count > 2, arguments[1] == "--replay" {
            replay(targets[0], files: Array(arguments[2...]))
            return
        }
        var runs = 100_000
        var seed: UInt64 = 1
        var rest = arguments.dropFirst()
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { fail("\(flag) needs a value") }
            switch (flag, Int(value), UInt64(value)) {
            case ("--runs", let number?, _): runs = number
            case ("--seed", _, let number?): seed = number
            default: fail("unknown flag or value: \(flag) \(value)")
            }
        }
        print("target         inputs   failures   peak RSS   seconds")
        var failed = false
        for target in targets {
            let start = ContinuousClock.now
            let campaign = FuzzCampaign(target: target, seed: seed)
            let count = runs
            let summary = waitFor { await campaign.run(count: count) }
            let seconds = (ContinuousClock.now - start).components.seconds
            let name = target.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
            print("\(name) \(String(summary.inputs).leftPadded(8)) \(String(summary.failures.count).leftPadded(10)) \((String(peakRSSMegabytes) + " MiB").leftPadded(10)) \(String(seconds).leftPadded(9))")
            for failure in summary.failures { print("  \(failure)") }
            failed = failed || !summary.failures.isEmpty
        }
        if failed { exit(1) }
    }

    static func replay(_ target: FuzzTarget, files: [String]) {
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { fail("cannot read \(file)") }
            do throws(FuzzFailure) {
                try target.runBlocking(Array(data))
                print("\(file): ok")
            } catch {
                print("\(file): \(error)")
            }
        }
    }

    /// The seed corpus, one folder per target: valid inputs only, small files.
    static func writeSeeds(to directory: URL) {
        for target in FuzzTarget.allCases {
            let folder = directory.appendingPathComponent(target.rawValue)
            try? FileManager.default.removeItem(at: folder)
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                for (index, seed) in target.seeds().enumerated() {
                    try Data(seed).write(to: folder.appendingPathComponent(String(format: "seed-%03d", index)))
                }
            } catch {
                fail("cannot write the seeds of \(target.rawValue): \(error)")
            }
        }
    }

}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        String(repeating: " ", count: max(0, width - count)) + self
    }
}

#endif
