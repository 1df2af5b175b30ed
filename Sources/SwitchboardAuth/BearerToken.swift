import SwitchboardBasics

/// Finds the JWT a WebSocket upgrade request carries (PROTOCOL.md §2).
package enum BearerToken {
    /// The prefix of a `Sec-WebSocket-Protocol` entry that carries a token.
    package static let protocolPrefix = "bearer."

    /// The token from, in order of precedence: the query's `token` parameter (percent-decoded),
    /// an `Authorization: Bearer …` header, or a `Sec-WebSocket-Protocol` entry `bearer.<token>`.
    /// `nil` when none of them carries a non-empty token.
    ///
    /// `protocolEntry` is the `bearer.<token>` entry offered in `Sec-WebSocket-Protocol`, whenever
    /// there is one (even when the token itself came from the query or header): a browser that offers
    /// subprotocols fails the handshake unless the server selects one, so the server echoes this entry
    /// back as `Sec-WebSocket-Protocol` in its 101 response.
    ///
    /// - Parameters:
    ///   - query: the request's query string, with or without the leading `?`.
    ///   - authorization: the `Authorization` header value.
    ///   - webSocketProtocols: the `Sec-WebSocket-Protocol` header values, joined with commas.
    package static func extract(
        query: String?,
        authorization: String?,
        webSocketProtocols: String?
    ) -> (token: String, protocolEntry: String?)? {
        let entry = webSocketProtocols.flatMap(protocolEntry(in:))
        if let query, let token = queryToken(query) {
            return (token, entry)
        }
        if let authorization, let token = bearerCredentials(authorization) {
            return (token, entry)
        }
        if let entry {
            return (String(entry.dropFirst(protocolPrefix.count)), entry)
        }
        return nil
    }

    /// The value of the first non-empty `token` parameter in `query`, percent-decoded.
    static func queryToken(_ query: String) -> String? {
        var query = Substring(query)
        if query.first == "?" { query = query.dropFirst() }
        for parameter in query.split(separator: "&") {
            guard let equals = parameter.firstIndex(of: "="), parameter[..<equals] == "token" else { continue }
            let raw = parameter[parameter.index(after: equals)...]
            guard !raw.isEmpty else { continue }
            return (try? PercentEncoding.decode(raw)) ?? String(raw)  // `+` stays `+`: tokens are base64url
        }
        return nil
    }

    /// The credentials of an `Authorization` header using the `Bearer` scheme (any case).
    static func bearerCredentials(_ header: String) -> String? {
        let trimmed = header.trimmingASCIISpaces()
        guard let space = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }) else { return nil }
        guard trimmed[..<space].lowercased() == "bearer" else { return nil }
        let credentials = trimmed[space...].trimmingASCIISpaces()
        return credentials.isEmpty ? nil : String(credentials)
    }

    /// The first `bearer.<token>` entry (prefix in any case) with a non-empty token.
    static func protocolEntry(in header: String) -> String? {
        for entry in header.split(separator: ",") {
            let entry = entry.trimmingASCIISpaces()
            guard entry.count > protocolPrefix.count,
                entry.prefix(protocolPrefix.count).lowercased() == protocolPrefix
            else { continue }
            return String(entry)
        }
        return nil
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    fileprivate func trimmingASCIISpaces() -> Substring {
        let view = Substring(self)
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = view.firstIndex(where: { !isSpace($0) }), let last = view.lastIndex(where: { !isSpace($0) })
        else { return view[view.endIndex...] }
        return view[first...last]
    }
}
