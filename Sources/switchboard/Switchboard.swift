import ArgumentParser

/// The `switchboard` command: the signaling server and its helpers.
@main
struct SwitchboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "A horizontally scaled WebRTC signaling server.",
        subcommands: [Serve.self, Token.self, Config.self],
        defaultSubcommand: Serve.self
    )
}
