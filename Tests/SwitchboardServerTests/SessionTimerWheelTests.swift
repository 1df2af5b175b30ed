import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import SwitchboardServer

/// The sessions' timers on one loop share a task per instant, and a session holds one entry at most.
@Suite struct SessionTimerWheelTests {
    /// A ping every 30 s (and, when asked, a write timeout); every other timer off.
    func limits(writeTimeout: Duration = .zero) -> WebSocketSessionLimits {
        WebSocketSessionLimits(
            WebSocketSettings(
                readTimeout: .zero,
                writeTimeout: writeTimeout,
                pingInterval: .seconds(30),
                pongTimeout: .zero,
                closeTimeout: .seconds(2)
            )
        )
    }

    func connect(_ count: Int, on loop: EmbeddedEventLoop, limits: WebSocketSessionLimits) throws -> [EmbeddedChannel] {
        try (0..<count).map { _ in
            let channel = EmbeddedChannel(loop: loop)
            try channel.pipeline.syncOperations.addHandler(WebSocketSessionHandler(limits: limits))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
            return channel
        }
    }

    @Test func deadlinesAreRoundedUpToTheGranularity() {
        let step = SessionTimerWheel.granularity
        #expect(SessionTimerWheel.instant(for: .uptimeNanoseconds(0)) == 0)
        #expect(SessionTimerWheel.instant(for: .uptimeNanoseconds(1)) == 1)
        #expect(SessionTimerWheel.instant(for: .uptimeNanoseconds(step)) == 1)
        #expect(SessionTimerWheel.instant(for: .uptimeNanoseconds(step + 1)) == 2)
    }

    @Test func sessionsDueTogetherShareOneTaskAndClosedOnesLeaveNothing() throws {
        let loop = EmbeddedEventLoop()
        let limits = limits()
        let channels = try connect(100, on: loop, limits: limits)
        let wheel = limits.timerWheels.wheel(on: loop)
        #expect(wheel.usage == (instants: 1, sessions: 100))

        loop.advanceTime(by: .seconds(30))
        for channel in channels {
            #expect(try channel.readOutbound(as: WebSocketFrame.self)?.opcode == .ping)
        }
        #expect(wheel.usage == (instants: 1, sessions: 100), "the next pings, 30 s on")

        for channel in channels.prefix(60) { try channel.close().wait() }
        #expect(wheel.usage == (instants: 1, sessions: 40))
        for channel in channels.dropFirst(60) { try channel.close().wait() }
        #expect(wheel.usage == (instants: 0, sessions: 0))
        loop.advanceTime(by: .seconds(60))
        for channel in channels {
            #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil, "no ping after the close")
        }
    }

    @Test func anEarlierDeadlineMovesTheSessionsOneEntry() throws {
        let loop = EmbeddedEventLoop()
        let limits = limits(writeTimeout: .seconds(10))
        let channel = try connect(1, on: loop, limits: limits)[0]
        let wheel = limits.timerWheels.wheel(on: loop)
        loop.advanceTime(by: .milliseconds(50))
        // The write timeout (10 s) comes before the ping (30 s): the entry moves, the ping's instant goes.
        for _ in 0..<1000 {
            channel.isWritable = false
            channel.pipeline.fireChannelWritabilityChanged()
            #expect(wheel.usage == (instants: 1, sessions: 1))
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
        }
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        loop.advanceTime(by: .seconds(10))
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil, "10.05 s is rounded up to 10.1 s")
        loop.advanceTime(by: .milliseconds(50))
        #expect(try channel.readOutbound(as: WebSocketFrame.self)?.opcode == .connectionClose)
    }
}
