import SwitchboardProto

/// Where the signals of a call addressed to a party who is reconnecting wait for them (PROTOCOL.md §8,
/// "Reconnecting during a call"): in-process on a single node (``InProcessKeptSignals``), in Redis in a
/// cluster, so that the user may come back on any node.
///
/// A user is *away* from `callId` when they have no session anywhere and either are still a party of
/// that call, or left it during the call (``away(_:callId:then:)``) less than `calls.reconnect_grace`
/// ago. What is kept for one user is bounded by ``KeptSignalLimits``: beyond it, the oldest signal gives
/// way and is answered, so that its sender can be told. Each operation is atomic against presence; an
/// answer comes exactly once, at once (in-process) or later on another thread (Redis).
package protocol KeptSignalStore: Sendable {
    /// `user`'s session closed during `callId`: their signals are kept for the reconnect grace, even
    /// after the call ends. Nothing happens if the user is connected again somewhere.
    func away(_ user: String, callId: String, then done: @escaping @Sendable () -> Void)

    /// Keeps `message` (a signal of `callId`) for `user` if they are away from that call.
    func keep(
        _ message: ChatMessage,
        for user: String,
        callId: String,
        then done: @escaping @Sendable (Result<KeepOutcome, KeptSignalsUnavailable>) -> Void
    )

    /// `user` connected again: takes what was kept for them, in order, and the call they are in.
    func resume(_ user: String, then done: @escaping @Sendable (Result<Resumption, KeptSignalsUnavailable>) -> Void)

    /// `user`'s reconnect grace ran out: forgets what was kept for them.
    func discard(_ user: String)
}

/// What ``KeptSignalStore/keep(_:for:callId:then:)`` did.
package enum KeepOutcome: Sendable, Equatable {
    /// Kept. `displaced`: older signals that gave way to it (oldest first); their senders must be told.
    case kept(displaced: [ChatMessage])
    /// The user is connected (again) on `node`: deliver it there.
    case present(node: String)
    /// The user is not away from that call: the signal's sender is told the user is offline.
    case notAway
}

/// What a user who connected again finds.
package struct Resumption: Sendable, Equatable {
    /// Whether the user was marked away from a call (their session closed during it, within the grace).
    package var wasAway: Bool
    /// The call the user is in, if any (ringing or active).
    package var call: Call?
    /// The signals kept for them, oldest first.
    package var kept: [ChatMessage]

    package init(wasAway: Bool, call: Call?, kept: [ChatMessage]) {
        self.wasAway = wasAway
        self.call = call
        self.kept = kept
    }

    /// Nothing to resume.
    package static let none = Resumption(wasAway: false, call: nil, kept: [])
}

/// How much is kept for one absent user, in signals and in bytes (``KeptSignalLimits/cost(of:)``).
package struct KeptSignalLimits: Sendable, Equatable {
    package var count: Int
    package var bytes: Int

    package init(count: Int, bytes: Int) {
        self.count = count
        self.bytes = bytes
    }

    /// PROTOCOL.md §8 asks for at least the last 256 signals. 1 MiB holds them at real sizes (ICE
    /// candidates of ~300 bytes, offers of a few KiB) with room to spare.
    package static let standard = KeptSignalLimits(count: 256, bytes: 1 << 20)

    /// What one kept message counts against ``bytes``: its content and addresses (Redis counts its stored
    /// encoding, which is about as long).
    package static func cost(of message: ChatMessage) -> Int {
        message.content.utf8.count + message.from.utf8.count + message.to.utf8.count + message.fromUsername.utf8.count
    }
}

/// The store of kept signals could not be asked (in a cluster: Redis is unreachable).
package struct KeptSignalsUnavailable: Error, Sendable, Equatable {
    package var description: String

    package init(_ description: String) {
        self.description = description
    }
}
