// Fuzzes the WebSocket frame path as a node runs it after the 101: raw bytes from a client →
// `WebSocketFrameCodec` (the node's RFC 6455 framing) → `WebSocketSessionHandler` (which reassembles
// messages with `WebSocketMessageAssembler`) → an application that echoes each message, on an
// `EmbeddedChannel` behind a model of the socket (`PeerSocket`: water marks, and a peer that may stop
// reading); then the clock runs 200 s on.
//
// Input: byte 0 says how the client behaves: bits 0-5 the size of each read (0: everything in one read),
// bit 7 the client does not read what it is sent, bit 6 it starts reading again 5 s after the node stopped
// reading from it. The rest is what the client sends.
//
// Properties, for every input:
// - the application sees only whole messages of at most `maxMessageBytes`, text ones valid UTF-8;
// - everything the server writes parses as server frames: FIN set, no reserved bits, unmasked, a
//   known opcode, control frames of at most 125 bytes, a close frame's code one that may be sent;
// - the server sends at most one close frame and nothing after it;
// - the node stops reading from the client exactly while the channel is unwritable, and holds at most
//   `maxPendingBytes` of unsent data plus one message and the close frames;
// - once the timers have run (ping, pong and write timeouts, close timeout), the connection is closed.
import FuzzSupport
import NIOCore
import NIOEmbedded
import NIOWebSocket
import SwitchboardWebSocket

runFuzzer { input in
    guard let behaviour = input.first else { return }
    let readSize = Int(behaviour & 0x3F)
    let stream = input.dropFirst()

    let channel = EmbeddedChannel()
    let peer = PeerSocket(reading: behaviour & 0x80 == 0)
    // The pipeline FramedWebSocketUpgrader and SignalingServerChannel build (no
    // WebSocketProtocolErrorHandler: the session handler answers framing errors itself).
    try! channel.pipeline.syncOperations.addHandlers([
        peer,
        WebSocketFrameCodec(maxFrameSize: settings.maxMessageBytes),
        WebSocketSessionHandler(settings: settings),
        EchoApplication(maxMessageBytes: settings.maxMessageBytes),
    ])
    try! channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()

    var output = OutputChecker()
    var offset = stream.startIndex
    var resumes = behaviour & 0x40 != 0
    while offset < stream.endIndex, channel.isActive {
        // As autoRead does after each read: ask for more; the socket reads only if the read reaches it.
        peer.readRequested = false
        channel.read()
        check(peer.readRequested == channel.isWritable, "read() held: \(!peer.readRequested), writable: \(channel.isWritable)")
        if !peer.readRequested {
            // The node stopped reading from the client. Time passes; the client may take its data.
            channel.embeddedEventLoop.advanceTime(by: .seconds(5))
            if resumes {
                resumes = false
                peer.startReading()
            }
            output.take(peer.takeWritten())
            if !peer.readRequested { break }  // the rest of the input is never read
        }
        let end = readSize == 0 ? stream.endIndex : min(offset + readSize, stream.endIndex)
        var buffer = channel.allocator.buffer(capacity: end - offset)
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: stream[offset..<end]))
        offset = end
        // Errors the handlers passed on (a decoder error, bytes after it) end up here; the handlers'
        // answer to them is what is checked.
        _ = try? channel.writeInbound(buffer)
        output.take(peer.takeWritten())
        check(peer.maxPending <= pendingBound, "\(peer.maxPending) bytes unsent, more than \(pendingBound)")
    }
    channel.embeddedEventLoop.advanceTime(by: .seconds(200))
    output.take(peer.takeWritten())
    output.finish()
    check(peer.maxPending <= pendingBound, "\(peer.maxPending) bytes unsent, more than \(pendingBound)")
    check(!channel.isActive, "the connection outlived its timers")
    _ = try? channel.finish(acceptAlreadyClosed: true)  // drops the sent data: it was checked as written
}
