import Crypto
import NIOCore
import RedisWire
import SwitchboardBasics

/// A Lua script run by `EVALSHA`, falling back to `EVAL` when the server does not have it cached
/// (after a restart or `SCRIPT FLUSH`).
struct RedisScript: Sendable {
    let source: String
    /// The SHA-1 of `source` in hex, as `SCRIPT LOAD` answers it.
    let sha: String

    init(_ source: String) {
        self.source = source
        sha = Hex.string(Insecure.SHA1.hash(data: Array(source.utf8)))
    }

    /// Runs the script with no keys and `arguments` as `ARGV`.
    func run(on redis: any RedisCommandSender, _ arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        let first = redis.send(["EVALSHA", RESPArgument(sha), "0"] + arguments)
        return first.flatMapError { error in
            guard (error as? RedisError)?.serverErrorPrefix == "NOSCRIPT" else {
                return first.eventLoop.makeFailedFuture(error)
            }
            return redis.send(["EVAL", RESPArgument(source), "0"] + arguments)
        }
    }

    /// The command that caches the script on the server, so that `EVALSHA` finds it.
    var loadCommand: [RESPArgument] { ["SCRIPT", "LOAD", RESPArgument(source)] }
}
