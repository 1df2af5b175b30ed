import SwitchboardProto

extension ChatMessage {
    /// Stamps the sender over whatever the client claimed, and the time when the client left it 0.
    package mutating func stamp(sender: UserIdentity, now: Int64) {
        from = sender.id
        fromUsername = sender.name ?? ""
        if let avatar = sender.avatar { self.avatar = avatar }
        if timestamp == 0 { timestamp = now }
    }

    /// The reply to an application heartbeat (`type` "heatbeat"/"heartbeat", content "ping"), else `nil`.
    package var heartbeatReply: ChatMessage? {
        guard type == "heatbeat" || type == "heartbeat", content == "ping" else { return nil }
        var reply = ChatMessage()
        reply.type = type
        reply.content = "pong"
        return reply
    }
}
