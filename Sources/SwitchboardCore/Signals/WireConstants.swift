/// `ChatMessage.contentType` values (PROTOCOL.md §1).
package enum ContentType {
    package static let text: Int32 = 1
    package static let file: Int32 = 2
    package static let image: Int32 = 3
    package static let voice: Int32 = 4
    package static let video: Int32 = 5
    package static let signal: Int32 = 6
    /// Content types relayed as they are.
    package static let plain: ClosedRange<Int32> = 1...5
}

/// `ChatMessage.messageType` values.
package enum MessageType {
    package static let direct: Int32 = 1
    package static let group: Int32 = 2
}
