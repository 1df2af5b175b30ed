import CHiredis
import NIOCore

/// One decoded unit of the server's byte stream.
enum RESPFrame {
    /// A reply to the oldest pending command.
    case reply(RESPValue)
    /// A pub/sub `message` push (only recognised on subscriber connections).
    case message(RedisPubSubMessage)
}

/// A hiredis `redisReader`: feed it bytes as they arrive, then pull complete replies until none is left.
///
/// Not `Sendable`: it belongs to one connection's channel handler and is used on that channel's
/// event loop only. An error is sticky: once the stream is malformed, every later call throws the
/// same ``RedisError/Code/protocolError``, and the owner must close the connection.
///
/// hiredis' default reply objects map both RESP2 nulls (`$-1` and `*-1`) to `REDIS_REPLY_NIL`. To keep
/// them apart, this reader replaces the reply-function table's `createNil` with one that calls the
/// default and tags a null *array* in the (otherwise unused) `integer` field of the nil reply.
final class RESPReader {
    /// The `integer` value that marks a `REDIS_REPLY_NIL` reply as the null array.
    private static let nullArrayTag: Int64 = 1

    private let reader: UnsafeMutablePointer<redisReader>
    /// This reader's copy of hiredis' default reply functions, with `createNil` replaced.
    private let functions: UnsafeMutablePointer<redisReplyObjectFunctions>
    private let allocator: ByteBufferAllocator

    /// The sticky error, once the stream turned out malformed.
    private(set) var failure: RedisError?
    /// The names of the channels messages came on, made once each (a subscriber has a few), so that a
    /// message costs no `String` of its own for its channel.
    private var channelNames: [String] = []
    private static let maxChannelNames = 16

    init(allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        guard let reader = redisReaderCreate() else {
            fatalError("redisReaderCreate failed: out of memory")
        }
        self.reader = reader
        self.allocator = allocator
        functions = .allocate(capacity: 1)
        functions.initialize(to: reader.pointee.fn.pointee)
        // hiredis hands the reader's privdata to every read task: it carries the default createNil.
        reader.pointee.privdata = unsafeBitCast(functions.pointee.createNil, to: UnsafeMutableRawPointer?.self)
        functions.pointee.createNil = { task in
            guard let task, let privdata = task.pointee.privdata else { return nil }
            typealias CreateNil = @convention(c) (UnsafePointer<redisReadTask>?) -> UnsafeMutableRawPointer?
            let defaultCreateNil = unsafeBitCast(privdata, to: CreateNil.self)
            let object = defaultCreateNil(task)
            if let object, task.pointee.type == REDIS_REPLY_ARRAY {
                object.assumingMemoryBound(to: redisReply.self).pointee.integer = RESPReader.nullArrayTag
            }
            return object
        }
        reader.pointee.fn = functions
    }

    deinit {
        // redisReaderFree frees a half-built reply through `fn`: the table must outlive it.
        redisReaderFree(reader)
        functions.deinitialize(count: 1)
        functions.deallocate()
    }

    /// Appends `buffer`'s readable bytes to the reader's input (hiredis copies them).
    func feed(_ buffer: ByteBuffer) throws(RedisError) {
        if let failure { throw failure }
        let status = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard status == REDIS_OK else { throw recordFailure() }
    }

    /// The next complete reply, or `nil` when the input holds no complete reply yet.
    func next() throws(RedisError) -> RESPValue? {
        switch try nextFrame(recognisingMessages: false) {
        case .reply(let value): value
        case .message, nil: nil
        }
    }

    /// The next complete frame, or `nil` when the input holds no complete reply yet.
    ///
    /// With `recognisingMessages`, a `["message", channel, payload]` array becomes a
    /// ``RESPFrame/message(_:)`` straight from hiredis' reply tree, without building a ``RESPValue``.
    func nextFrame(recognisingMessages: Bool) throws(RedisError) -> RESPFrame? {
        if let failure { throw failure }
        var object: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &object) == REDIS_OK else { throw recordFailure() }
        guard let object else { return nil }
        defer { freeReplyObject(object) }
        let reply = UnsafePointer(object.assumingMemoryBound(to: redisReply.self))
        if recognisingMessages, let message = message(reply) {
            return .message(message)
        }
        return .reply(value(reply))
    }

    private func recordFailure() -> RedisError {
        let text = withUnsafeBytes(of: reader.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let error = RedisError(code: .protocolError, message: text.isEmpty ? "malformed RESP stream" : text)
        failure = error
        return error
    }

    private func value(_ reply: UnsafePointer<redisReply>) -> RESPValue {
        switch reply.pointee.type {
        case REDIS_REPLY_STRING:
            return .bulkString(buffer(reply))
        case REDIS_REPLY_ARRAY:
            let count = reply.pointee.elements
            var elements: [RESPValue] = []
            elements.reserveCapacity(count)
            for index in 0..<count {
                elements.append(value(UnsafePointer(reply.pointee.element[index]!)))
            }
            return .array(elements)
        case REDIS_REPLY_INTEGER:
            return .integer(reply.pointee.integer)
        case REDIS_REPLY_NIL:
            return reply.pointee.integer == Self.nullArrayTag ? .array(nil) : .bulkString(nil)
        case REDIS_REPLY_STATUS:
            return .simpleString(text(reply))
        case REDIS_REPLY_ERROR:
            return .error(text(reply))
        default:
            // hiredis 0.14 creates no other reply types.
            return .error("unknown hiredis reply type \(reply.pointee.type)")
        }
    }

    private func message(_ reply: UnsafePointer<redisReply>) -> RedisPubSubMessage? {
        guard reply.pointee.type == REDIS_REPLY_ARRAY, reply.pointee.elements == 3,
            let kind = reply.pointee.element[0], kind.pointee.type == REDIS_REPLY_STRING,
            bytes(kind).elementsEqual("message".utf8),
            let channel = reply.pointee.element[1], channel.pointee.type == REDIS_REPLY_STRING,
            let payload = reply.pointee.element[2], payload.pointee.type == REDIS_REPLY_STRING
        else { return nil }
        return RedisPubSubMessage(channel: channelName(channel), payload: buffer(payload))
    }

    private func channelName(_ reply: UnsafePointer<redisReply>) -> String {
        let name = bytes(reply)
        if let known = channelNames.first(where: { $0.utf8.elementsEqual(name) }) { return known }
        let text = String(decoding: name, as: UTF8.self)
        if channelNames.count < Self.maxChannelNames { channelNames.append(text) }
        return text
    }

    private func bytes(_ reply: UnsafePointer<redisReply>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: reply.pointee.str, count: reply.pointee.len)
    }

    private func buffer(_ reply: UnsafePointer<redisReply>) -> ByteBuffer {
        allocator.buffer(bytes: bytes(reply))
    }

    private func text(_ reply: UnsafePointer<redisReply>) -> String {
        String(decoding: bytes(reply), as: UTF8.self)
    }
}
