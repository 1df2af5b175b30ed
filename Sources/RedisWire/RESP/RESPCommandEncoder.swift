import CHiredis
import NIOCore

/// Encodes commands as RESP arrays of bulk strings with hiredis' `redisFormatCommandArgv`.
///
/// Every argument is passed with its length, so binary payloads (`\r\n`, `\0`) are safe.
/// hiredis returns a `malloc`'d buffer, which is copied into the `ByteBuffer` and freed
/// with `redisFreeCommand` at once.
enum RESPCommandEncoder {
    /// Appends the RESP encoding of `command` to `buffer`.
    static func encode(_ command: some Collection<RESPArgument>, into buffer: inout ByteBuffer) throws(RedisError) {
        let argc = command.count
        guard argc > 0 else {
            throw RedisError(code: .invalidCommand, message: "a command needs at least one argument")
        }
        guard argc <= Int(Int32.max) else {
            throw RedisError(code: .invalidCommand, message: "too many arguments: \(argc)")
        }
        var totalBytes = 0
        for argument in command { totalBytes += argument.byteCount }

        // argv, the lengths and one contiguous copy of all argument bytes live in temporary
        // (stack, when small) allocations: no heap allocation besides hiredis' own result.
        let encoded = withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: argc) { argv in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: argc) { lengths in
                // One spare byte so the base address is never nil, even when every argument is empty.
                withUnsafeTemporaryAllocation(byteCount: totalBytes + 1, alignment: 1) { scratch in
                    let base = scratch.baseAddress!
                    var offset = 0
                    for (index, argument) in command.enumerated() {
                        let count = argument.byteCount
                        argument.copyBytes(to: UnsafeMutableRawBufferPointer(start: base + offset, count: count))
                        argv[index] = UnsafePointer((base + offset).assumingMemoryBound(to: CChar.self))
                        lengths[index] = count
                        offset += count
                    }
                    var target: UnsafeMutablePointer<CChar>?
                    let length = redisFormatCommandArgv(&target, Int32(argc), argv.baseAddress, lengths.baseAddress)
                    guard length >= 0, let target else { return false }
                    defer { redisFreeCommand(target) }
                    buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(length)))
                    return true
                }
            }
        }
        guard encoded else {
            throw RedisError(code: .invalidCommand, message: "redisFormatCommandArgv failed (out of memory)")
        }
    }
}
