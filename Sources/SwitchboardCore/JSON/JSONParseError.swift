/// Why a byte sequence is not a JSON text this parser accepts, and where.
package struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, e.g. "leading zero in number".
    package let message: String
    /// The 0-based byte offset at which the problem was found.
    package let offset: Int

    /// Creates an error.
    package init(message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    /// "`message` at byte `offset`".
    package var description: String { "\(message) at byte \(offset)" }
}
