import ArgumentParser
import SwitchboardServer

/// `switchboard config`: prints the configuration reference.
struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print every configuration key with its environment variable and default (Markdown)."
    )

    func run() {
        print(SwitchboardConfiguration.referenceMarkdown)
    }
}
