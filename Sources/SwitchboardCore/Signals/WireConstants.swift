/// `ChatMessage.contentType` values (PROTOCOL.md §1).
public enum ContentType {
    public static let text: Int32 = 1
    public static let file: Int32 = 2
    public static let image: Int32 = 3
    public static let voice: Int32 = 4
    public static let video: Int32 = 5
    public static let signal: Int32 = 6
    /// Content types relayed as they are.
    public static let plain: ClosedRange<Int32> = 1...5
}

/// `ChatMessage.messageType` values.
public enum MessageType {
    public static let direct: Int32 = 1
    public static let group: Int32 = 2
}
