import NIOCore

/// A RESP2 reply, as the server sent it.
///
/// RESP2 has two nulls: the null bulk string (`$-1`, e.g. `GET` of a missing key) is
/// `.bulkString(nil)`, the null array (`*-1`, e.g. a timed-out `BLPOP`) is `.array(nil)`.
package enum RESPValue: Sendable, Hashable {
    /// `+OK`: a status reply.
    case simpleString(String)
    /// `-ERR …`: an error reply (the whole line after `-`). A top-level error reply fails its
    /// command with ``RedisError/Code/server`` instead; this case appears nested, e.g. inside `EXEC` results.
    case error(String)
    /// `:42`: a signed 64-bit integer.
    case integer(Int64)
    /// `$3\r\nfoo`: a binary-safe string, or `nil` for the null bulk string.
    case bulkString(ByteBuffer?)
    /// `*2\r\n…`: an array of replies, or `nil` for the null array.
    case array([RESPValue]?)
}
