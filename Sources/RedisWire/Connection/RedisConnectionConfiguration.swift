/// How to open a ``RedisConnection``: the endpoint and the timeouts.
package struct RedisConnectionConfiguration: Sendable, Hashable {
    /// The server and credentials.
    package var endpoint: RedisEndpoint
    /// Limit for the TCP connect.
    package var connectTimeout: Duration
    /// Limit for each command's reply; `nil` waits forever. When a command times out it fails with
    /// ``RedisError/Code/timeout`` and the connection closes (later replies could not be matched),
    /// failing every other pending command too. Blocking commands (`BLPOP`) need a longer limit.
    package var commandTimeout: Duration?

    /// A configuration for `endpoint`.
    package init(endpoint: RedisEndpoint, connectTimeout: Duration = .seconds(5), commandTimeout: Duration? = .seconds(5)) {
        self.endpoint = endpoint
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    /// A configuration for `redis://[[user]:password@]host[:port][/db]`; see ``RedisEndpoint/init(url:)``.
    package init(url: String, connectTimeout: Duration = .seconds(5), commandTimeout: Duration? = .seconds(5)) throws(RedisError)
    {
        self.init(endpoint: try RedisEndpoint(url: url), connectTimeout: connectTimeout, commandTimeout: commandTimeout)
    }
}
