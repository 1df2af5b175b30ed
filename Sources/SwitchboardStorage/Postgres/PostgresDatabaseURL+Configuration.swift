import PostgresNIO

extension PostgresDatabaseURL {
    /// The pool's configuration: endpoint, login, no TLS, ``connectTimeout``, ``applicationName``.
    var clientConfiguration: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        switch endpoint {
        case .tcp(let host, let port):
            configuration = .init(
                host: host,
                port: port,
                username: username,
                password: password,
                database: database,
                tls: .disable
            )
        case .unixSocket:
            configuration = .init(
                unixSocketPath: unixSocketPath ?? "",
                username: username,
                password: password,
                database: database
            )
        }
        configuration.options.connectTimeout = connectTimeout
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }

    /// The same settings for a single connection (the one migrations run on).
    var connectionConfiguration: PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        switch endpoint {
        case .tcp(let host, let port):
            configuration = .init(
                host: host,
                port: port,
                username: username,
                password: password,
                database: database,
                tls: .disable
            )
        case .unixSocket:
            configuration = .init(
                unixSocketPath: unixSocketPath ?? "",
                username: username,
                password: password,
                database: database
            )
        }
        configuration.options.connectTimeout = TimeAmount(connectTimeout)
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }

    private var startupParameters: [(String, String)] {
        applicationName.map { [("application_name", $0)] } ?? []
    }
}
