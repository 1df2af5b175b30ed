import CLibFuzzer

#if canImport(Glibc)
import Glibc
#endif

/// The harness's per-input function; set once by `runFuzzer` before libFuzzer starts.
///
/// `nonisolated(unsafe)` is safe: it is written once, before `LLVMFuzzerRunDriver` runs, and read only by
/// libFuzzer's callback, which runs on the thread that called the driver (`-fork`/`-jobs` use processes).
nonisolated(unsafe) private var harnessBody: ((UnsafeRawBufferPointer) -> Void)?

/// Hands `body` to libFuzzer: with no arguments it fuzzes forever; `scripts/fuzz` passes corpus folders
/// and `-max_total_time` and the other flags; a file argument replays that one input (a reproducer).
///
/// `body` gets one input (possibly empty) and must not keep it. A broken property is a crash
/// (`check`), which libFuzzer reports and saves as `crash-<sha1>`.
public func runFuzzer(_ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
    harnessBody = body
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzerTestOneInput))
}

/// The per-input callback. Its C name is the one libFuzzer's own `main` refers to: `-sanitize=fuzzer` links
/// that `main` in, although SwiftPM points the executable's `main` at the harness's main.swift (which calls
/// `runFuzzer`), so the symbol must exist.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let body = harnessBody else {
        fatalError("libFuzzer called in before runFuzzer: the harness's main.swift did not run")
    }
    body(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// Crashes with `message` when `condition` is false: the property being fuzzed does not hold.
@inline(__always)
public func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        fatalError("fuzz property broken: \(message())")
    }
}
