/// Why a byte sequence is not a JSON text this parser accepts, and where.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, e.g. "leading zero in number".
    public let message: String
    /// The 0-based byte offset at which the problem was found.
    public let offset: Int

    /// Creates an error.
    public init(message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    /// "`message` at byte `offset`".
    public var description: String { "\(message) at byte \(offset)" }
}
