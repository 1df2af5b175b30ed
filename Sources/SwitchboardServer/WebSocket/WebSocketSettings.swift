import NIOCore

/// Limits and timers of one WebSocket connection, applied by `WebSocketSessionHandler`.
///
/// A duration of zero (or less) turns its timer off.
package struct WebSocketSettings: Sendable, Hashable {
    /// The largest whole message (all fragments together) a peer may send; more closes with 1009.
    ///
    /// The frame decoder's `maxFrameSize` should be at least this large, or a big unfragmented
    /// message is refused by the decoder (also with 1009) before it reaches the session handler.
    package var maxMessageBytes: Int
    /// With no inbound frame (and no reported application activity) for this long, close with 1001.
    package var readTimeout: Duration
    /// If the channel stays unwritable (the peer does not read) this long, close with 1008.
    package var writeTimeout: Duration
    /// More unsent data than this (bytes) for a peer closes with 1008; 0 turns the cap off.
    package var maxPendingBytes: Int
    /// How often the server sends a WebSocket ping.
    package var pingInterval: Duration
    /// How long the server waits for a pong to its ping before closing with 1001.
    package var pongTimeout: Duration
    /// How long, after sending a close frame, the server waits for the peer's close before dropping TCP.
    package var closeTimeout: Duration
    /// Outbound buffer size (bytes) under which an unwritable channel becomes writable again.
    package var writeBufferLowWaterMark: Int
    /// Outbound buffer size (bytes) over which the channel becomes unwritable.
    package var writeBufferHighWaterMark: Int

    /// Settings with the defaults of PROTOCOL.md §7 (`read_timeout: 60s, write_timeout: 10s,
    /// ping_interval: 30s, pong_timeout: 10s`), a 1 MiB message limit, 4 MiB of unsent data at most
    /// and a 2 s close timeout.
    package init(
        maxMessageBytes: Int = 1 << 20,
        readTimeout: Duration = .seconds(60),
        writeTimeout: Duration = .seconds(10),
        maxPendingBytes: Int = 4 << 20,
        pingInterval: Duration = .seconds(30),
        pongTimeout: Duration = .seconds(10),
        closeTimeout: Duration = .seconds(2),
        writeBufferLowWaterMark: Int = 64 << 10,
        writeBufferHighWaterMark: Int = 1 << 20
    ) {
        self.maxMessageBytes = maxMessageBytes
        self.readTimeout = readTimeout
        self.writeTimeout = writeTimeout
        self.maxPendingBytes = maxPendingBytes
        self.pingInterval = pingInterval
        self.pongTimeout = pongTimeout
        self.closeTimeout = closeTimeout
        self.writeBufferLowWaterMark = writeBufferLowWaterMark
        self.writeBufferHighWaterMark = writeBufferHighWaterMark
    }
}

extension TimeAmount {
    /// The `TimeAmount` of a settings duration, or `nil` when it is zero or negative (timer off).
    init?(enabled duration: Duration) {
        guard duration > .zero else { return nil }
        self.init(duration)
    }
}
