import RedisWire

extension SwitchboardConfiguration.Redis {
    /// The Redis this node uses, `nil` in single-node mode: `redis.url` parsed when it is set; otherwise
    /// `redis.host` (an IPv6 address with or without brackets), `redis.port` (6379 when unset),
    /// `redis.password` (none when unset or empty) and `redis.db` (0 when unset), taken as they are.
    /// - Throws: `RedisError` with code `invalidURL` for a `redis.url` that is not a valid `redis://` URL.
    package func endpoint() throws(RedisError) -> RedisEndpoint? {
        if let url { return try RedisEndpoint(url: url) }
        guard let host else { return nil }
        let unbracketed = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return RedisEndpoint(
            host: unbracketed,
            port: port ?? 6379,
            password: password.flatMap { $0.isEmpty ? nil : $0 },
            database: db ?? 0
        )
    }
}
