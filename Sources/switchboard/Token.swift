import ArgumentParser
import Foundation
import SwitchboardAuth
import SwitchboardCore
import SwitchboardServer

/// `switchboard token`: prints a JWT for a user, signed with `SWITCHBOARD_JWT_SECRET`.
struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a token for a user, signed with SWITCHBOARD_JWT_SECRET (or the config file's jwt_secret)."
    )

    @Option(help: "The user id (the token's sub).")
    var user: String

    @Option(help: "Display name (the token's name).")
    var name: String?

    @Option(help: "Avatar URL (the token's avatar).")
    var avatar: String?

    @Option(help: "Lifetime, e.g. 30m, 1h, 24h.")
    var ttl: String = "1h"

    @Option(help: "YAML configuration file to read jwt_secret from.")
    var config: String?

    func run() throws {
        let configuration: SwitchboardConfiguration
        do {
            configuration = try SwitchboardConfiguration.load(
                file: config,
                environment: ProcessInfo.processInfo.environment,
                overrides: [:]
            )
        } catch {
            throw ValidationError("\(error)")
        }
        guard let lifetime = DurationText.parse(ttl), lifetime > .zero else {
            throw ValidationError("--ttl: \"\(ttl)\" is not a duration (write 30m, 1h, 24h)")
        }
        guard UserIdentity.isValidUserID(user) else {
            throw ValidationError("--user must be 1-64 characters of A-Z a-z 0-9 . _ @ -")
        }
        let expiresAt = Int64(Date().timeIntervalSince1970) + lifetime.components.seconds
        print(JWTSigner(secret: configuration.jwtSecret).token(user: user, name: name, avatar: avatar, expiresAt: expiresAt))
    }
}
