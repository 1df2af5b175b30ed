import NIOCore

/// `WebSocketSettings` as `WebSocketSessionHandler` reads them, made once per listener and shared by
/// all its connections: an idle connection keeps one reference instead of its own copy of nine settings
/// (issue 10: memory per idle connection).
package final class WebSocketSessionLimits: Sendable {
    let maxMessageBytes: Int
    /// 0: no cap.
    let maxPendingBytes: Int
    let closeTimeout: TimeAmount
    /// The channel's marks; the high one never above `maxPendingBytes`, which is only checked while
    /// the channel is unwritable.
    let waterMark: ChannelOptions.Types.WriteBufferWaterMark
    /// The keepalive timers; `nil` when off.
    let readTimeout: TimeAmount?
    let writeTimeout: TimeAmount?
    let pingInterval: TimeAmount?
    let pongTimeout: TimeAmount?
    /// The connections' timers, one wheel per event loop.
    let timerWheels = SessionTimerWheels()

    package init(_ settings: WebSocketSettings) {
        maxMessageBytes = settings.maxMessageBytes
        maxPendingBytes = settings.maxPendingBytes
        closeTimeout = TimeAmount(enabled: settings.closeTimeout) ?? .zero
        var high = max(settings.writeBufferHighWaterMark, settings.writeBufferLowWaterMark)
        if settings.maxPendingBytes > 0 { high = min(high, settings.maxPendingBytes) }
        waterMark = .init(low: min(settings.writeBufferLowWaterMark, high), high: high)
        readTimeout = TimeAmount(enabled: settings.readTimeout)
        writeTimeout = TimeAmount(enabled: settings.writeTimeout)
        pingInterval = TimeAmount(enabled: settings.pingInterval)
        pongTimeout = TimeAmount(enabled: settings.pongTimeout)
    }
}
