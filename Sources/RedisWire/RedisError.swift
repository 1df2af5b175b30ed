/// Why a Redis command, connection or configuration failed.
///
/// Match on ``code`` (an extensible set: new codes may be added without breaking callers);
/// ``message`` carries the details, such as the text of a server `-ERR …` reply.
package struct RedisError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure. Compare with `==` against the static members.
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case connectionClosed
            case timeout
            case unavailable
            case protocolError
            case server
            case invalidURL
            case connectFailed
            case invalidCommand
        }

        private let base: Base

        private init(_ base: Base) { self.base = base }

        /// The connection closed (or was closed) before the command's reply arrived.
        package static let connectionClosed = Code(.connectionClosed)
        /// No reply within the command timeout; the connection was closed because replies
        /// could no longer be matched to commands.
        package static let timeout = Code(.timeout)
        /// The client has no live connection (it is reconnecting, or not running): the command was not sent.
        package static let unavailable = Code(.unavailable)
        /// The byte stream from the server is not valid RESP, or a reply came that no command asked for.
        package static let protocolError = Code(.protocolError)
        /// The server answered with an error reply (`-ERR …`, `-WRONGTYPE …`, `-NOAUTH …`); see ``RedisError/message``.
        package static let server = Code(.server)
        /// A `redis://` URL that cannot be parsed.
        package static let invalidURL = Code(.invalidURL)
        /// Connecting failed: TCP connect (or its timeout), or `AUTH` / `SELECT` on the new connection.
        package static let connectFailed = Code(.connectFailed)
        /// A command that cannot be encoded (for example, no arguments).
        package static let invalidCommand = Code(.invalidCommand)

        package var description: String {
            switch base {
            case .connectionClosed: "connectionClosed"
            case .timeout: "timeout"
            case .unavailable: "unavailable"
            case .protocolError: "protocolError"
            case .server: "server"
            case .invalidURL: "invalidURL"
            case .connectFailed: "connectFailed"
            case .invalidCommand: "invalidCommand"
            }
        }
    }

    /// The kind of failure.
    package let code: Code
    /// Details: for ``Code/server`` the server's error text (e.g. `ERR unknown command 'FOO'`).
    package let message: String

    /// An error with `code` and a human-readable `message`.
    package init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// `error` itself if it is a `RedisError`; otherwise the connection's failure it stands for.
    package init(wrapping error: any Error) {
        self = (error as? RedisError) ?? RedisError(code: .connectionClosed, message: "\(error)")
    }

    /// The error for a server error reply with text `message` (e.g. `WRONGTYPE Operation against a key…`).
    package static func server(_ message: String) -> RedisError {
        RedisError(code: .server, message: message)
    }

    /// For a ``Code/server`` error, the error's first word (`ERR`, `WRONGTYPE`, `NOAUTH`, …).
    package var serverErrorPrefix: Substring? {
        guard code == .server else { return nil }
        return message.split(separator: " ", maxSplits: 1).first
    }

    package var description: String { "RedisError.\(code): \(message)" }
}
