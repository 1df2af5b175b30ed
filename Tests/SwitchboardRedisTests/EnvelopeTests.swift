import NIOCore
import SwitchboardCore
import Testing

@testable import SwitchboardRedis

@Suite struct EnvelopeTests {
    @Test(arguments: [
        CallEffect.none,
        .end(callId: "c1"),
        .update(Call(id: "c1", caller: "alice", callee: "bob", callType: .video, createdAt: 1_700_000_000_000)),
        .update(
            Call(id: "c2", caller: "a", callee: "b", callType: .audio, createdAt: 5, state: .active, startedAt: 9)
        ),
    ])
    func roundTrips(effect: CallEffect) throws {
        let envelope = Envelope(
            kind: .deliver,
            origin: "node-1",
            user: "bob",
            effect: effect,
            isRetry: true,
            message: ByteBuffer(bytes: [0x0A, 0x01, 0x41, 0xFF])
        )
        #expect(try Envelope(decoding: envelope.encoded()) == envelope)
    }

    /// Given the message's bytes instead of a buffer, the encoding is the same, byte for byte.
    @Test(arguments: [
        CallEffect.none,
        .end(callId: String(repeating: "c", count: 300)),
        .update(
            Call(id: String(repeating: "i", count: 200), caller: "alice", callee: "bob", callType: .video, createdAt: 1)
        ),
    ])
    func messageBytesEncodeAsTheMessageBufferDoes(effect: CallEffect) throws {
        let message: [UInt8] = Array(repeating: 0x41, count: 500)
        var envelope = Envelope(kind: .deliver, origin: "node-1", user: "bob", effect: effect, incarnation: 7)
        let fromBytes = envelope.encoded(messageBytes: message)
        envelope.message = ByteBuffer(bytes: message)
        #expect(fromBytes == envelope.encoded())
        #expect(try Envelope(decoding: fromBytes) == envelope)
    }

    @Test func replaceCarriesNoMessage() throws {
        let envelope = Envelope(kind: .replace, origin: "n2", user: "carol")
        let decoded = try Envelope(decoding: envelope.encoded())
        #expect(decoded.kind == .replace)
        #expect(decoded.user == "carol")
        #expect(decoded.message.readableBytes == 0)
        #expect(!decoded.isRetry)
    }

    @Test(arguments: [
        [UInt8](), [0x53], [0x53, 0x02, 0x01, 0x00], Array("hello world".utf8), [0x53, 0x01, 0x09, 0x00, 0x00, 0x00],
    ])
    func rejectsWhatIsNotAnEnvelope(bytes: [UInt8]) {
        #expect(throws: EnvelopeError.self) { try Envelope(decoding: ByteBuffer(bytes: bytes)) }
    }

    @Test func rejectsATruncatedCall() {
        let call = Call(id: "c1", caller: "a", callee: "b", callType: .audio, createdAt: 1)
        var bytes = Envelope(kind: .deliver, origin: "n", user: "b", effect: .update(call)).encoded()
        bytes.moveWriterIndex(to: bytes.writerIndex - 4)
        #expect(throws: EnvelopeError.self) { try Envelope(decoding: bytes) }
    }

    @Test func aBundleCarriesSeveralEnvelopesInOrder() throws {
        let envelopes = (0..<3).map { index in
            Envelope(kind: .deliver, origin: "n1", user: "bob", message: ByteBuffer(string: "m\(index)"), sequence: UInt64(index))
        }
        let parts = try #require(EnvelopeBundle.split(EnvelopeBundle.encode(envelopes.map { $0.encoded() })))
        #expect(try parts.map { try Envelope(decoding: $0) } == envelopes)
        // A single envelope is published as it is, and splits into itself.
        let single = envelopes[0].encoded()
        #expect(EnvelopeBundle.split(single) == [single])
    }

    @Test func aTruncatedBundleIsRejected() {
        var bundle = EnvelopeBundle.encode([Envelope(kind: .replace, origin: "n1", user: "bob").encoded()])
        bundle.moveWriterIndex(to: bundle.writerIndex - 1)
        #expect(EnvelopeBundle.split(bundle) == nil)
    }
}
