/// A `--database` URL of a scheme no call-record store handles (see ``CallRecordStores/open(url:logger:)``).
package struct UnsupportedDatabaseURLError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The URL's scheme (the text before the first `:`), or `nil` when it has none. Only the scheme is
    /// kept, so that a password in a mistyped URL never reaches a log.
    package let scheme: String?

    /// The error for `url`.
    package init(url: String) {
        if let colon = url.firstIndex(of: ":"), colon != url.startIndex {
            scheme = String(url[..<colon])
        } else {
            scheme = nil
        }
    }

    package var description: String {
        let what = scheme.map { "unsupported database URL scheme \"\($0):\"" } ?? "the database URL has no scheme"
        return "\(what): expected \(CallRecordStores.acceptedForms)"
    }
}
