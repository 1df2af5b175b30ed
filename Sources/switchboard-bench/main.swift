// switchboard-bench: the project's load generator (see BenchCommand.swift).
import ArgumentParser

/// In top-level code `SwitchboardBench.main()` resolves to the synchronous `ParsableCommand.main()`, which
/// never calls an async `run()`; inside an async function the async overload is chosen.
func runCommand() async {
    await SwitchboardBench.main()
}

await runCommand()
