import SwitchboardBasics

/// Where a PostgreSQL call-record database lives and how to log in, parsed from a `--database` URL
/// (PROTOCOL.md §7) in libpq's URI form:
///
/// ```
/// postgres://USER[:PASSWORD]@HOST[:PORT][/DATABASE][?PARAM=VALUE&…]
/// postgresql://…                                    (the same)
/// postgres://USER@127.0.0.1:5433/calls?sslmode=disable
/// postgres://USER@[::1]/calls                       (IPv6 literal)
/// postgres://USER@/calls?host=/var/run/postgresql   (Unix socket in that directory)
/// postgres://USER@%2Fvar%2Frun%2Fpostgresql/calls   (the same, as libpq also allows)
/// ```
///
/// The user and password are percent-decoded (write `@` as `%40`, `:` as `%3A`, `/` as `%2F`, `%` as `%25`);
/// so are the database name and the parameters. The port defaults to 5432; a missing database means the
/// user's name (PostgreSQL's default). Parameters:
/// - `sslmode`: `disable`, `allow` or `prefer` (all of which permit a plain connection, which is what this
///   store makes); `require`, `verify-ca` and `verify-full` are refused with
///   ``CallRecordStoreError/Code-swift.struct/tlsNotSupported``, since TLS is not wired in.
/// - `host`: an absolute directory holding the server's Unix socket (`.s.PGSQL.PORT`), or a host name that
///   replaces the one in the authority.
/// - `application_name`: shown in `pg_stat_activity`.
/// - `connect_timeout`: whole seconds (at least 1) allowed for opening a connection; 10 when absent.
///
/// Anything else (another scheme, no user, several hosts, an unknown parameter, a malformed escape) throws
/// ``CallRecordStoreError`` with code `invalidURL` and a message naming the problem.
package struct PostgresDatabaseURL: Sendable, Hashable, CustomStringConvertible {
    /// How to reach the server.
    package enum Endpoint: Sendable, Hashable {
        /// TCP to a host name or IP address.
        case tcp(host: String, port: Int)
        /// The Unix socket `DIRECTORY/.s.PGSQL.PORT`.
        case unixSocket(directory: String, port: Int)
    }

    /// The port PostgreSQL listens on unless told otherwise.
    package static let defaultPort = 5432
    /// How long opening a connection may take when the URL has no `connect_timeout`.
    package static let defaultConnectTimeout: Duration = .seconds(10)

    /// How to reach the server.
    package var endpoint: Endpoint
    /// The role to log in as.
    package var username: String
    /// The password, or `nil` for none (trust or peer authentication).
    package var password: String?
    /// The database to open; `nil` means the one named like ``username``.
    package var database: String?
    /// The `application_name` the server shows for these connections.
    package var applicationName: String?
    /// How long opening a connection may take.
    package var connectTimeout: Duration

    /// Creates a description of a database from its parts.
    package init(
        endpoint: Endpoint,
        username: String,
        password: String? = nil,
        database: String? = nil,
        applicationName: String? = nil,
        connectTimeout: Duration = defaultConnectTimeout
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.applicationName = applicationName
        self.connectTimeout = connectTimeout
    }

    /// Whether `url` starts with `postgres://` or `postgresql://` (any case): whether it is meant for this store.
    package static func hasPostgresScheme(_ url: String) -> Bool {
        schemeLength(of: url) != nil
    }

    /// The path of the Unix socket for a ``Endpoint/unixSocket(directory:port:)`` endpoint, else `nil`.
    package var unixSocketPath: String? {
        guard case .unixSocket(let directory, let port) = endpoint else { return nil }
        return (directory.hasSuffix("/") ? directory : directory + "/") + ".s.PGSQL.\(port)"
    }

    /// The URL with the password replaced by `***`, fit for logs.
    package var description: String {
        var text = "postgres://" + PercentEncoding.encode(username)
        if password != nil { text += ":***" }
        text += "@"
        var query: [String] = []
        switch endpoint {
        case .tcp(let host, let port):
            text += host.contains(":") ? "[\(host)]" : host
            if port != Self.defaultPort { text += ":\(port)" }
        case .unixSocket(let directory, let port):
            if port != Self.defaultPort { text += ":\(port)" }
            query.append("host=" + PercentEncoding.encode(directory, keeping: [UInt8(ascii: "/")]))
        }
        if let database { text += "/" + PercentEncoding.encode(database) }
        if let applicationName { query.append("application_name=" + PercentEncoding.encode(applicationName)) }
        if connectTimeout != Self.defaultConnectTimeout {
            query.append("connect_timeout=\(connectTimeout.components.seconds)")
        }
        return query.isEmpty ? text : text + "?" + query.joined(separator: "&")
    }

    /// Parses a `postgres://` or `postgresql://` URL (see the type's documentation for the accepted forms).
    /// - Throws: ``CallRecordStoreError`` with code `invalidURL`, or `tlsNotSupported` for an
    ///   `sslmode` that demands TLS. Messages never repeat the password.
    package init(parsing url: String) throws {
        guard let schemeLength = Self.schemeLength(of: url) else {
            throw Self.invalid("expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE or postgresql://…")
        }
        var rest = url[url.utf8.index(url.utf8.startIndex, offsetBy: schemeLength)...]
        guard !rest.contains("#") else { throw Self.invalid("a fragment (#…) is not allowed") }

        var queryText: Substring?
        if let mark = rest.firstIndex(of: "?") {
            queryText = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var pathText: Substring?
        if let slash = rest.firstIndex(of: "/") {
            pathText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        guard let at = rest.lastIndex(of: "@") else {
            throw Self.invalid("no user name: write postgres://USER[:PASSWORD]@HOST…")
        }
        let userInfo = rest[..<at]
        let hostAndPort = rest[rest.index(after: at)...]

        // User and password.
        let username: String
        var password: String?
        if let colon = userInfo.firstIndex(of: ":") {
            username = try Self.percentDecoded(userInfo[..<colon], "the user name")
            let decoded = try Self.percentDecoded(userInfo[userInfo.index(after: colon)...], "the password")
            password = decoded.isEmpty ? nil : decoded
        } else {
            username = try Self.percentDecoded(userInfo, "the user name")
        }
        guard !username.isEmpty else { throw Self.invalid("the user name is empty") }

        // Host and port.
        var host: String
        var port = Self.defaultPort
        var portText: Substring?
        if hostAndPort.hasPrefix("[") {
            guard let close = hostAndPort.firstIndex(of: "]") else { throw Self.invalid("unclosed [ in the host") }
            host = String(hostAndPort[hostAndPort.index(after: hostAndPort.startIndex)..<close])
            let after = hostAndPort[hostAndPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw Self.invalid("unexpected text after ] in the host") }
                portText = after.dropFirst()
            }
            guard !host.isEmpty else { throw Self.invalid("the IPv6 address in [] is empty") }
        } else if let colon = hostAndPort.firstIndex(of: ":") {
            host = try Self.percentDecoded(hostAndPort[..<colon], "the host")
            portText = hostAndPort[hostAndPort.index(after: colon)...]
        } else {
            host = try Self.percentDecoded(hostAndPort, "the host")
        }
        guard !host.contains(",") else { throw Self.invalid("several hosts are not supported") }
        if let portText { port = try Self.port(portText) }

        // Database.
        var database: String?
        if let pathText, !pathText.isEmpty {
            let decoded = try Self.percentDecoded(pathText, "the database name")
            guard !decoded.contains("/") else { throw Self.invalid("the database name contains /") }
            database = decoded
        }

        // Parameters.
        var applicationName: String?
        var connectTimeout = Self.defaultConnectTimeout
        var seen: Set<String> = []
        for pair in (queryText ?? "").split(separator: "&", omittingEmptySubsequences: true) {
            guard let equals = pair.firstIndex(of: "=") else { throw Self.invalid("parameter \"\(pair)\" has no value") }
            let key = try Self.percentDecoded(pair[..<equals], "a parameter name")
            let value = try Self.percentDecoded(pair[pair.index(after: equals)...], "parameter \(key)")
            guard seen.insert(key).inserted else { throw Self.invalid("parameter \(key) is given twice") }
            switch key {
            case "sslmode":
                switch value {
                case "disable", "allow", "prefer": break
                case "require", "verify-ca", "verify-full":
                    throw CallRecordStoreError(
                        .postgres,
                        .tlsNotSupported,
                        "sslmode=\(value) asks for TLS, which this build does not support for PostgreSQL: "
                            + "use sslmode=disable on a trusted network, or a Unix socket (?host=/dir)"
                    )
                default:
                    throw Self.invalid("unknown sslmode \"\(value)\" (disable, allow, prefer, require, verify-ca, verify-full)")
                }
            case "host":
                guard !value.isEmpty else { throw Self.invalid("parameter host is empty") }
                guard !value.contains(",") else { throw Self.invalid("several hosts are not supported") }
                host = value
            case "application_name":
                applicationName = value
            case "connect_timeout":
                guard let seconds = Int(value), seconds >= 1, seconds <= 86_400, value.allSatisfy(\.isASCIIDigit) else {
                    throw Self.invalid("connect_timeout must be whole seconds from 1 to 86400, got \"\(value)\"")
                }
                connectTimeout = .seconds(seconds)
            default:
                throw Self.invalid(
                    "unknown parameter \"\(key)\" (supported: sslmode, host, application_name, connect_timeout)"
                )
            }
        }

        let endpoint: Endpoint
        if host.hasPrefix("/") {
            endpoint = .unixSocket(directory: host, port: port)
        } else if host.isEmpty {
            throw Self.invalid("no host: write postgres://USER@HOST/DATABASE, or ?host=/socket/directory")
        } else {
            endpoint = .tcp(host: host, port: port)
        }
        self.init(
            endpoint: endpoint,
            username: username,
            password: password,
            database: database,
            applicationName: applicationName,
            connectTimeout: connectTimeout
        )
    }

    // MARK: Parsing helpers

    private static func schemeLength(of url: String) -> Int? {
        for scheme in ["postgres://", "postgresql://"] where url.utf8.count >= scheme.utf8.count {
            if String(decoding: url.utf8.prefix(scheme.utf8.count), as: UTF8.self).lowercased() == scheme {
                return scheme.utf8.count
            }
        }
        return nil
    }

    private static func invalid(_ problem: String) -> CallRecordStoreError {
        CallRecordStoreError(.postgres, .invalidURL, "invalid PostgreSQL URL: \(problem)")
    }

    private static func port(_ text: Substring) throws -> Int {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy(\.isASCIIDigit), let port = Int(text), (1...65_535).contains(port)
        else { throw invalid("the port must be a number from 1 to 65535, got \"\(text)\"") }
        return port
    }

    /// `text` with `%XX` escapes decoded; throws on a malformed escape or bytes that are not UTF-8.
    private static func percentDecoded(_ text: Substring, _ what: String) throws -> String {
        do {
            return try PercentEncoding.decode(text)
        } catch .malformedEscape {
            throw invalid("malformed percent escape in \(what) (write % as %25)")
        } catch .notUTF8 {
            throw invalid("\(what) is not UTF-8 once percent-decoded")
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isWholeNumber }
}
