/// Who is on the other end of a socket, as proven by the token presented at the upgrade (PROTOCOL.md §2).
package struct UserIdentity: Sendable, Hashable {
    /// The token's `sub`: 1-64 characters of `[A-Za-z0-9._@-]`.
    package let id: String
    /// The token's `name`, stamped as `fromUsername` / `fromName`.
    package let name: String?
    /// The token's `avatar`.
    package let avatar: String?

    /// Creates an identity; `nil` when `id` is not a valid user id.
    package init?(id: String, name: String? = nil, avatar: String? = nil) {
        guard Self.isValidUserID(id) else { return nil }
        self.id = id
        self.name = name
        self.avatar = avatar
    }

    /// Whether `id` is 1-64 characters of `[A-Za-z0-9._@-]`.
    package static func isValidUserID(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard (1...64).contains(utf8.count) else { return false }
        return utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "@"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
    }
}
