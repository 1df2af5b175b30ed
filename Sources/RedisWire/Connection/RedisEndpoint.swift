import SwitchboardBasics

/// Where a Redis server is and how to log in: parsed from `redis://[[user]:password@]host[:port][/db]`.
package struct RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP address (an IPv6 address without brackets).
    package var host: String
    /// TCP port; 6379 when the URL names none.
    package var port: Int
    /// ACL user name for `AUTH user password`; `nil` sends `AUTH password` (the `default` user).
    package var username: String?
    /// Password for `AUTH`; `nil` sends no `AUTH`.
    package var password: String?
    /// Database index for `SELECT`; 0 sends no `SELECT`.
    package var database: Int

    /// An endpoint from its parts.
    package init(host: String, port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    ///
    /// The user name and password may be percent-encoded; an IPv6 host is written in brackets
    /// (`redis://[::1]:6379`). Throws ``RedisError/Code/invalidURL`` for anything else.
    package init(url: String) throws(RedisError) {
        func invalid(_ why: String) -> RedisError {
            RedisError(code: .invalidURL, message: "\(why): \(Self.redacted(url))")
        }
        let scheme = "redis://"
        guard url.lowercased().hasPrefix(scheme) else { throw invalid("not a redis:// URL") }
        var rest = Substring(url.dropFirst(scheme.count))
        guard !rest.contains("?"), !rest.contains("#") else { throw invalid("query and fragment are not supported") }

        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }

        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                guard let user = try? PercentEncoding.decode(userinfo[..<colon]),
                    let pass = try? PercentEncoding.decode(userinfo[userinfo.index(after: colon)...])
                else { throw invalid("bad percent-encoding in the credentials") }
                username = user.isEmpty ? nil : user
                password = pass
            } else {
                guard let pass = try? PercentEncoding.decode(userinfo) else {
                    throw invalid("bad percent-encoding in the credentials")
                }
                password = pass
            }
        }

        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("unterminated IPv6 address") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("unexpected text after the IPv6 address") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.firstIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw invalid("missing host") }

        var port = 6379
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else { throw invalid("bad port") }
            port = value
        }

        var database = 0
        if !path.isEmpty {
            guard let value = Int(path), value >= 0 else { throw invalid("bad database number") }
            database = value
        }

        self.init(host: String(host), port: port, username: username, password: password, database: database)
    }

    /// The endpoint as a URL, with the password shown as `***`.
    package var description: String {
        var text = "redis://"
        if username != nil || password != nil {
            text += (username ?? "") + (password == nil ? "" : ":***") + "@"
        }
        text += host.contains(":") ? "[\(host)]" : host
        text += ":\(port)"
        if database != 0 { text += "/\(database)" }
        return text
    }

    /// `url` with any credentials replaced, for error messages and logs.
    private static func redacted(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let schemeEnd = url.firstRange(of: "://") else { return url }
        return String(url[..<schemeEnd.upperBound]) + "***" + String(url[at...])
    }
}
