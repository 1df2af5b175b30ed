/// Close-code rules of RFC 6455 §7.4.
enum WebSocketCloseCode {
    /// Whether a peer may send `code` in a close frame (RFC 6455 §7.4.1/§7.4.2 and the IANA registry).
    ///
    /// Valid: 1000–1003, 1007–1014 and 3000–4999. Invalid: below 1000, 1004–1006 (reserved or
    /// never sent on the wire), 1015 (never sent), 1016–2999 (unassigned) and 5000 and above.
    static func isValidOnWire(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }

    /// `reason` cut at a character boundary so that a code and the reason fit the 125 bytes of a
    /// control frame (123 bytes of reason).
    static func reasonThatFits(_ reason: String) -> Substring {
        guard reason.utf8.count > 123 else { return reason[...] }
        var end = reason.startIndex
        var bytes = 0
        for index in reason.indices {
            let next = reason.index(after: index)
            bytes += reason.utf8.distance(from: index, to: next)
            if bytes > 123 { break }
            end = next
        }
        return reason[..<end]
    }
}
