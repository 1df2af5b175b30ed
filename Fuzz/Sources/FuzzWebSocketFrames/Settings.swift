import SwitchboardWebSocket

/// The node's defaults, with limits small enough for short inputs to reach them: 1009 above 512 bytes,
/// unwritable above 1 KiB unsent, 1008 above 2 KiB.
let settings = WebSocketSettings(
    maxMessageBytes: 512,
    maxPendingBytes: 2048,
    writeBufferLowWaterMark: 256,
    writeBufferHighWaterMark: 1024
)
/// Unsent data the node may hold: the cap, one echoed message over it, and the close frame.
let pendingBound = settings.maxPendingBytes + settings.maxMessageBytes + 14 + 131
