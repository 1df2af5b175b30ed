import SwitchboardProto

/// A `ChatMessage` still in its protobuf bytes, as another node sent it: delivered to a socket as it
/// is, and decoded only where the engine has to keep it (a recipient away or resuming).
package protocol EncodedChatMessage: Sendable {
    /// Its `from` field.
    var sender: String { get }
    /// How many bytes it takes.
    var byteCount: Int { get }
    /// Copies its bytes to `destination`, which has room for ``byteCount`` of them.
    func copyBytes(to destination: UnsafeMutableRawBufferPointer)
    /// The message, decoded; `nil` when its bytes are not a `ChatMessage`.
    func decoded() -> ChatMessage?
}

extension SessionOutlet {
    /// Queues the message `message` holds: by default decoded and delivered as any message.
    package func deliver(encoded message: some EncodedChatMessage) {
        guard let decoded = message.decoded() else { return }
        deliver(decoded)
    }
}
