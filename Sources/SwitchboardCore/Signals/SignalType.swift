/// The `type` of a WebRTC signal a client may send (PROTOCOL.md §3).
package enum SignalType: String, Sendable, CaseIterable {
    case callInvite = "call-invite"
    case callAccept = "call-accept"
    case callReject = "call-reject"
    case callHangup = "call-hangup"
    /// The sender's media connection is up (PROTOCOL.md §8): not relayed, no answer.
    case callConnected = "call-connected"
    case offer
    case answer
    case iceCandidate = "ice-candidate"

    /// Signals that carry media negotiation inside a ringing or active call.
    package var isNegotiation: Bool {
        switch self {
        case .offer, .answer, .iceCandidate: true
        default: false
        }
    }
}
