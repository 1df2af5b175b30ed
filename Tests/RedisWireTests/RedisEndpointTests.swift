import Testing

@testable import RedisWire

@Suite("redis:// URLs")
struct RedisEndpointTests {
    @Test func hostAndPort() throws {
        #expect(try RedisEndpoint(url: "redis://127.0.0.1:6380") == RedisEndpoint(host: "127.0.0.1", port: 6380))
        #expect(try RedisEndpoint(url: "redis://cache") == RedisEndpoint(host: "cache", port: 6379))
        #expect(try RedisEndpoint(url: "REDIS://cache:1/") == RedisEndpoint(host: "cache", port: 1))
    }

    @Test func passwordAndDatabase() throws {
        let endpoint = try RedisEndpoint(url: "redis://:s%40cr%3At@localhost:6379/3")
        #expect(endpoint == RedisEndpoint(host: "localhost", port: 6379, password: "s@cr:t", database: 3))
        #expect(endpoint.description == "redis://:***@localhost:6379/3")
    }

    @Test func userAndPassword() throws {
        let endpoint = try RedisEndpoint(url: "redis://node:pw@10.0.0.1:7000")
        #expect(endpoint.username == "node")
        #expect(endpoint.password == "pw")
    }

    @Test func ipv6Host() throws {
        #expect(try RedisEndpoint(url: "redis://[::1]:6390/2") == RedisEndpoint(host: "::1", port: 6390, database: 2))
        #expect(RedisEndpoint(host: "::1").description == "redis://[::1]:6379")
    }

    @Test(arguments: [
        "http://localhost", "redis://", "redis://:pw@", "redis://host:0", "redis://host:70000", "redis://host:x",
        "redis://host/-1", "redis://host/db", "redis://[::1", "redis://[::1]x", "redis://host?db=1", "redis://:%zz@host",
    ])
    func rejects(url: String) {
        let error = #expect(throws: RedisError.self) { try RedisEndpoint(url: url) }
        #expect(error?.code == .invalidURL)
    }

    @Test func errorsDoNotLeakThePassword() {
        let error = #expect(throws: RedisError.self) { try RedisEndpoint(url: "redis://:hunter2@host:x") }
        #expect(error?.message.contains("hunter2") == false)
    }
}
