// switchboard-bench: the project's load generator (see BenchCommand.swift).
import ArgumentParser
// Parsed and run explicitly, because in top-level code both `SwitchboardBench.main()` and `command.run()`
// resolve to ParsableCommand's synchronous versions; through `any AsyncParsableCommand` the call reaches
// the async `run()`.
do {
    var command: any AsyncParsableCommand = try SwitchboardBench.parse()
    try await command.run()
} catch {
    SwitchboardBench.exit(withError: error)
}
