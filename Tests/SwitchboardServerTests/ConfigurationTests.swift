import Foundation
import Logging
import NIOCore
import RedisWire
import Testing

@testable import SwitchboardServer

/// A class, so that each test's configuration files go with it (`deinit`).
@Suite final class ConfigurationTests {
    let secretEnvironment = ["SWITCHBOARD_JWT_SECRET": "s3cret-0123456789abcdef0123456789abcdef"]
    /// This test's configuration files, removed when it is done.
    private let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("switchboard-config-\(UInt64.random(in: 0...UInt64.max))")

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes `yaml` to a fresh file of this test's and returns its path.
    func temporaryFile(_ yaml: String) throws -> String {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent("\(UInt64.random(in: 0...UInt64.max)).yaml")
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func loadError(
        file: String? = nil,
        environment: [String: String] = ["SWITCHBOARD_JWT_SECRET": "s3cret-0123456789abcdef0123456789abcdef"],
        overrides: [String: String] = [:]
    ) -> ConfigurationError? {
        do {
            _ = try SwitchboardConfiguration.load(file: file, environment: environment, overrides: overrides)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Defaults

    @Test func defaults() throws {
        let config = try SwitchboardConfiguration.load(file: nil, environment: secretEnvironment, overrides: [:])
        #expect(config.server.host == "0.0.0.0")
        #expect(config.server.port == 8080)
        #expect(NodeIdentifier.isValid(config.server.nodeID))
        #expect(config.server.nodeID.count >= 8)
        #expect(config.jwtSecret == "s3cret-0123456789abcdef0123456789abcdef")
        #expect(config.database.url == "sqlite:switchboard.sqlite")
        #expect(config.redis.url == nil)
        #expect(!config.redis.isEnabled)
        #expect(config.redis.host == nil && config.redis.port == nil && config.redis.password == nil && config.redis.db == nil)
        #expect(config.redis.channels.webrtcSignals == "webrtc:signals")
        #expect(config.redis.heartbeatInterval == .seconds(2))
        #expect(config.websocket.maxConnections == 10_000)
        #expect(config.websocket.readTimeout == .seconds(60))
        #expect(config.websocket.writeTimeout == .seconds(10))
        #expect(config.websocket.pingInterval == .seconds(30))
        #expect(config.websocket.pongTimeout == .seconds(10))
        #expect(config.websocket.maxMessageBytes == 1_048_576)
        #expect(config.calls.ringTimeout == .seconds(60))
        #expect(config.calls.reconnectGrace == .seconds(10))
        #expect(config.limits.messagesPerSecond == 50)
        #expect(config.limits.invitesPerMinute == 10)
        #expect(config.log.level == .info)
        #expect(config.testing.echoRoute == false)
        #expect(config.server.requestTimeout == .seconds(10))
        #expect(config.server.maxPendingConnections == 1024)
        #expect(config.server.maxPendingConnectionsPerAddress == 64)
        #expect(config.server.trustedProxies.isEmpty)
        #expect(config.metrics.port == nil)
    }

    @Test func eventLoopsAreOnePerTwoCoresUnlessSet() throws {
        var config = try SwitchboardConfiguration.load(file: nil, environment: secretEnvironment, overrides: [:])
        #expect(config.server.threads == 0)
        #expect(config.server.eventLoopCount == max(1, System.coreCount / 2))
        config.server.threads = 3
        #expect(config.server.eventLoopCount == 3)
    }

    @Test func nodeIDIsGeneratedOncePerProcess() throws {
        let first = try SwitchboardConfiguration.load(file: nil, environment: secretEnvironment, overrides: [:])
        let second = try SwitchboardConfiguration.load(file: nil, environment: secretEnvironment, overrides: [:])
        #expect(first.server.nodeID == second.server.nodeID)
        #expect(first == second)
    }

    @Test func initWithSecretEqualsLoadedDefaults() throws {
        let loaded = try SwitchboardConfiguration.load(file: nil, environment: secretEnvironment, overrides: [:])
        #expect(SwitchboardConfiguration(jwtSecret: "s3cret-0123456789abcdef0123456789abcdef") == loaded)
    }

    @Test func missingSecretNamesKeyAndVariable() throws {
        let error = try #require(loadError(environment: [:]))
        #expect(error.key == "jwt_secret")
        #expect(error.description.contains("jwt_secret"))
        #expect(error.description.contains("SWITCHBOARD_JWT_SECRET"))
        let empty = try #require(loadError(environment: ["SWITCHBOARD_JWT_SECRET": ""]))
        #expect(empty.key == "jwt_secret")
    }

    @Test func shortSecretStopsStartUpNamingTheKey() throws {
        // 31 bytes: refused, from any layer, without showing the secret.
        let short = String(repeating: "k", count: 31)
        for error in [
            try #require(loadError(environment: ["SWITCHBOARD_JWT_SECRET": short])),
            try #require(loadError(file: try temporaryFile("jwt_secret: \(short)\n"), environment: [:])),
        ] {
            #expect(error.key == "jwt_secret")
            #expect(error.description.hasPrefix("jwt_secret: must be at least 32 bytes"))
            #expect(!error.description.contains(short))
        }
        // Bytes, not characters: 16 × "é" is 32 bytes of UTF-8.
        #expect(loadError(environment: ["SWITCHBOARD_JWT_SECRET": String(repeating: "é", count: 16)]) == nil)
        #expect(loadError(environment: ["SWITCHBOARD_JWT_SECRET": String(repeating: "é", count: 15) + "k"]) != nil)
        #expect(loadError(environment: ["SWITCHBOARD_JWT_SECRET": String(repeating: "k", count: 32)]) == nil)
    }

    @Test func trustedProxiesFromEnvironmentAndFileList() throws {
        let fromEnvironment = try SwitchboardConfiguration.load(
            file: nil,
            environment: secretEnvironment.merging(["SWITCHBOARD_SERVER_TRUSTED_PROXIES": " 10.0.0.0/8, 192.0.2.7,fd00::/8 "]) {
                $1
            },
            overrides: [:]
        )
        #expect(fromEnvironment.server.trustedProxies.description == "10.0.0.0/8,192.0.2.7/32,fd00::/8")
        let path = try temporaryFile(
            "server:\n  trusted_proxies: [127.0.0.1, \"::1\"]\n  request_timeout: 1500ms\nmetrics: {port: 9100}\n"
        )
        let fromFile = try SwitchboardConfiguration.load(file: path, environment: secretEnvironment, overrides: [:])
        #expect(fromFile.server.trustedProxies.description == "127.0.0.1/32,::1/128")
        #expect(fromFile.server.requestTimeout == .milliseconds(1500))
        #expect(fromFile.metrics.port == 9100)
        let bad = try #require(
            loadError(environment: secretEnvironment.merging(["SWITCHBOARD_SERVER_TRUSTED_PROXIES": "10.0.0.0/8,nginx"]) { $1 })
        )
        #expect(bad.key == "server.trusted_proxies")
        #expect(bad.description.contains("\"nginx\", which is not an IP address or CIDR network"))
        #expect(
            try #require(loadError(file: try temporaryFile("server: {trusted_proxies: [[1]]}\n"))).key == "server.trusted_proxies"
        )
    }

    // MARK: Layers

    @Test func file() throws {
        let path = try temporaryFile(
            """
            # The seed's names, plus the project's own keys.
            server: {host: 127.0.0.1, port: 9001, node_id: node-a}
            jwt_secret: "from-file-0123456789abcdef0123456789abcdef"
            database:
              url: postgres://switchboard@localhost/switchboard
            websocket: {max_connections: 500, read_timeout: 90s, write_timeout: 5s, ping_interval: 15s, pong_timeout: 5s, max_message_bytes: 65536}
            redis: {host: localhost, port: 6379, channels: {webrtc_signals: "webrtc:signals:test"}, heartbeat_interval: 500ms}
            calls:
              ring_timeout: 2m
              reconnect_grace: 0
            limits: {messages_per_second: 5, invites_per_minute: 3}
            log: {level: debug}
            testing: {echo_route: true}
            """
        )
        let config = try SwitchboardConfiguration.load(file: path, environment: [:], overrides: [:])
        #expect(config.server.host == "127.0.0.1")
        #expect(config.server.port == 9001)
        #expect(config.server.nodeID == "node-a")
        #expect(config.jwtSecret == "from-file-0123456789abcdef0123456789abcdef")
        #expect(config.database.url == "postgres://switchboard@localhost/switchboard")
        #expect(config.websocket.maxConnections == 500)
        #expect(config.websocket.readTimeout == .seconds(90))
        #expect(config.websocket.writeTimeout == .seconds(5))
        #expect(config.websocket.pingInterval == .seconds(15))
        #expect(config.websocket.pongTimeout == .seconds(5))
        #expect(config.websocket.maxMessageBytes == 65536)
        #expect(try config.redis.endpoint() == RedisEndpoint(host: "localhost", port: 6379))
        #expect(config.redis.channels.webrtcSignals == "webrtc:signals:test")
        #expect(config.redis.heartbeatInterval == .milliseconds(500))
        #expect(config.calls.ringTimeout == .seconds(120))
        #expect(config.calls.reconnectGrace == .zero)
        #expect(config.limits.messagesPerSecond == 5)
        #expect(config.limits.invitesPerMinute == 3)
        #expect(config.log.level == .debug)
        #expect(config.testing.echoRoute)
    }

    @Test func emptyFileAndNullValuesKeepDefaults() throws {
        let empty = try temporaryFile("# nothing here\n")
        #expect(
            try SwitchboardConfiguration.load(file: empty, environment: secretEnvironment, overrides: [:]).server.port == 8080
        )
        let nulls = try temporaryFile("server:\n  port: ~\nredis:\n")
        let config = try SwitchboardConfiguration.load(file: nulls, environment: secretEnvironment, overrides: [:])
        #expect(config.server.port == 8080)
        #expect(config.redis.url == nil)
    }

    @Test func environmentOverFile() throws {
        let path = try temporaryFile(
            "jwt_secret: from-file-0123456789abcdef0123456789abcdef\nserver: {port: 9001}\ncalls: {ring_timeout: 30s}\n"
        )
        let config = try SwitchboardConfiguration.load(
            file: path,
            environment: [
                "SWITCHBOARD_SERVER_PORT": "9002",
                "SWITCHBOARD_CALLS_RING_TIMEOUT": "45s",
                "SWITCHBOARD_WEBSOCKET_MAX_CONNECTIONS": "7",
                "SWITCHBOARD_JWT_SECRET": "from-env-0123456789abcdef0123456789abcdef",
                "SWITCHBOARD_NOT_A_KEY": "ignored",
                "HOME": "/root",
            ],
            overrides: [:]
        )
        #expect(config.server.port == 9002)
        #expect(config.calls.ringTimeout == .seconds(45))
        #expect(config.websocket.maxConnections == 7)
        #expect(config.jwtSecret == "from-env-0123456789abcdef0123456789abcdef")
    }

    @Test func flagOverEnvironment() throws {
        let path = try temporaryFile("server: {port: 9001}\nredis: {url: \"redis://file:6379\"}\n")
        let config = try SwitchboardConfiguration.load(
            file: path,
            environment: [
                "SWITCHBOARD_JWT_SECRET": "s3cret-0123456789abcdef0123456789abcdef", "SWITCHBOARD_SERVER_PORT": "9002",
                "SWITCHBOARD_SERVER_NODE_ID": "env-node",
            ],
            overrides: ["server.port": "9003", "server.node_id": "flag-node", "database.url": "sqlite:/tmp/x.sqlite"]
        )
        #expect(config.server.port == 9003)
        #expect(config.server.nodeID == "flag-node")
        #expect(config.database.url == "sqlite:/tmp/x.sqlite")
        #expect(config.redis.url == "redis://file:6379")
        // An empty flag clears an optional key: single-node mode despite the file.
        let single = try SwitchboardConfiguration.load(
            file: path,
            environment: ["SWITCHBOARD_JWT_SECRET": "s3cret-0123456789abcdef0123456789abcdef"],
            overrides: ["redis.url": ""]
        )
        #expect(single.redis.url == nil)
    }

    // MARK: Invalid values

    @Test(arguments: [
        ("server.port", "70000", "out of range"),
        ("server.port", "-1", "out of range"),
        ("server.port", "80a", "not an integer"),
        ("server.host", "", "not a host"),
        ("server.node_id", "node a", "not a node id"),
        ("redis.port", "0", "out of range"),
        ("redis.db", "x", "not an integer"),
        ("redis.channels.webrtc_signals", "", "must not be empty"),
        ("redis.heartbeat_interval", "0s", "greater than 0"),
        ("websocket.max_connections", "0", "out of range"),
        ("websocket.read_timeout", "abc", "is not a duration (write 500ms, 30s, 2m)"),
        ("websocket.write_timeout", "-1s", "not a duration"),
        ("websocket.ping_interval", "5x", "not a duration"),
        ("websocket.pong_timeout", "", "not a duration"),
        ("websocket.max_message_bytes", "1023", "out of range"),
        ("websocket.max_message_bytes", "67108865", "out of range"),
        ("calls.ring_timeout", "25h", "at most 24h"),
        ("calls.reconnect_grace", "1.5s", "not a duration"),
        ("limits.messages_per_second", "0", "out of range"),
        ("limits.invites_per_minute", "many", "not an integer"),
        ("log.level", "loud", "not a log level"),
        ("testing.echo_route", "maybe", "not a boolean"),
        ("server.request_timeout", "0s", "greater than 0"),
        ("server.max_pending_connections", "0", "out of range"),
        ("server.max_pending_connections_per_address", "x", "not an integer"),
        ("server.trusted_proxies", "10.0.0.0/33", "not an IP address or CIDR network"),
        ("metrics.port", "0", "out of range"),
    ])
    func invalidValueNamesItsKey(path: String, value: String, problem: String) throws {
        let fromFlag = try #require(loadError(overrides: [path: value]))
        #expect(fromFlag.key == path)
        #expect(fromFlag.value == value)
        #expect(fromFlag.description.hasPrefix("\(path): \"\(value)\" "))
        #expect(fromFlag.description.contains(problem))
        let variable = try #require(SwitchboardConfiguration.environmentVariable(forKeyPath: path))
        let fromEnvironment = try #require(
            loadError(environment: ["SWITCHBOARD_JWT_SECRET": "s3cret-0123456789abcdef0123456789abcdef", variable: value])
        )
        #expect(fromEnvironment.key == path)
        #expect(fromEnvironment.description.contains(variable))
    }

    @Test func errorMessageReadsAsDocumented() throws {
        let error = try #require(
            loadError(environment: [
                "SWITCHBOARD_JWT_SECRET": "s3cret-0123456789abcdef0123456789abcdef", "SWITCHBOARD_WEBSOCKET_READ_TIMEOUT": "abc",
            ])
        )
        #expect(
            error.description
                == #"websocket.read_timeout: "abc" is not a duration (write 500ms, 30s, 2m); set by environment variable SWITCHBOARD_WEBSOCKET_READ_TIMEOUT"#
        )
    }

    @Test func invalidFileValueNamesKeyAndLine() throws {
        let path = try temporaryFile("server:\n  host: localhost\n  port: eighty\n")
        let error = try #require(loadError(file: path))
        #expect(error.key == "server.port")
        #expect(error.source == "\(path):3")
    }

    @Test func secretsStayOutOfErrors() throws {
        let error = try #require(loadError(overrides: ["redis.url": "http://:hunter2@cache:6379"]))
        #expect(error.key == "redis.url")
        #expect(!error.description.contains("hunter2"))
        let database = try #require(loadError(overrides: ["database.url": "mysql://root:hunter2@db/calls"]))
        #expect(database.key == "database.url")
        #expect(!database.description.contains("hunter2"))
        #expect(database.description.contains("not a database URL"))
    }

    // MARK: Unknown keys and file shape

    @Test func unknownFileKeyIsRejectedWithSuggestion() throws {
        let path = try temporaryFile("websocket:\n  max_conections: 10\n")
        let error = try #require(loadError(file: path))
        #expect(error.key == "websocket.max_conections")
        #expect(error.description.contains("unknown key"))
        #expect(error.description.contains("websocket.max_connections"))
        #expect(error.source == "\(path):2")
    }

    @Test func unknownSectionsAndOverridesAreRejected() throws {
        #expect(try #require(loadError(file: try temporaryFile("tracing: {port: 9100}\n"))).key == "tracing")
        #expect(try #require(loadError(file: try temporaryFile("server:\n  port: 1\n  tls: {}\n"))).key == "server.tls")
        #expect(try #require(loadError(overrides: ["server.prot": "1"])).key == "server.prot")
    }

    @Test func fileShapeErrors() throws {
        #expect(try #require(loadError(file: try temporaryFile("server: {port: [1, 2]}\n"))).key == "server.port")
        #expect(try #require(loadError(file: try temporaryFile("server: localhost\n"))).key == "server")
        #expect(loadError(file: try temporaryFile("- a\n- b\n")) != nil)
        #expect(loadError(file: try temporaryFile("server: {port: 1\n")) != nil)
        #expect(loadError(file: "/nonexistent/switchboard.yaml")?.description.contains("/nonexistent/switchboard.yaml") == true)
    }

    // MARK: Durations

    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)), ("30s", .seconds(30)), ("2m", .seconds(120)), ("1h", .seconds(3600)),
        ("45", .seconds(45)), (" 10s ", .seconds(10)), ("0ms", .zero), ("500us", .microseconds(500)),
    ])
    func durationsParse(text: String, expected: Duration) {
        #expect(DurationText.parse(text) == expected)
    }

    @Test(arguments: ["-1s", "5x", "", "s", "1.5s", "1 s", "10S", "1h30m", "+5s", "9999999999999s"])
    func durationsReject(text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test func durationsFormat() {
        #expect(DurationText.format(.milliseconds(500)) == "500ms")
        #expect(DurationText.format(.seconds(30)) == "30s")
        #expect(DurationText.format(.seconds(120)) == "2m")
        #expect(DurationText.format(.seconds(7200)) == "2h")
        #expect(DurationText.format(.zero) == "0s")
        #expect(DurationText.format(.microseconds(500)) == "500us")
        #expect(DurationText.format(.microseconds(1500)) == "1500us")
    }

    @Test func durationsLoadFromEveryLayer() throws {
        let path = try temporaryFile("calls: {ring_timeout: 45}\n")
        let config = try SwitchboardConfiguration.load(
            file: path,
            environment: [
                "SWITCHBOARD_JWT_SECRET": "s3cret-0123456789abcdef0123456789abcdef", "SWITCHBOARD_WEBSOCKET_PING_INTERVAL": "1h",
            ],
            overrides: ["websocket.pong_timeout": "500ms"]
        )
        #expect(config.calls.ringTimeout == .seconds(45))
        #expect(config.websocket.pingInterval == .seconds(3600))
        #expect(config.websocket.pongTimeout == .milliseconds(500))
    }

    // MARK: Redis

    @Test func redisEndpointFromHostAndPort() throws {
        let hostOnly = try SwitchboardConfiguration.load(
            file: nil,
            environment: [
                "SWITCHBOARD_JWT_SECRET": "s3cret-0123456789abcdef0123456789abcdef", "SWITCHBOARD_REDIS_HOST": "cache",
            ],
            overrides: [:]
        )
        #expect(try hostOnly.redis.endpoint() == RedisEndpoint(host: "cache", port: 6379))
        #expect(hostOnly.redis.isEnabled)

        let path = try temporaryFile("redis: {host: 10.0.0.5, port: 6380, password: \"p@ss:w/rd\", db: 2}\n")
        let full = try SwitchboardConfiguration.load(file: path, environment: secretEnvironment, overrides: [:])
        #expect(try full.redis.endpoint() == RedisEndpoint(host: "10.0.0.5", port: 6380, password: "p@ss:w/rd", database: 2))
        #expect(full.redis.host == "10.0.0.5")
        #expect(full.redis.port == 6380)

        let ipv6 = try SwitchboardConfiguration.load(
            file: nil,
            environment: secretEnvironment,
            overrides: ["redis.host": "::1", "redis.port": "7000"]
        )
        #expect(try ipv6.redis.endpoint() == RedisEndpoint(host: "::1", port: 7000))

        let urlWins = try SwitchboardConfiguration.load(
            file: path,
            environment: secretEnvironment,
            overrides: ["redis.url": "redis://primary:6379/0"]
        )
        #expect(urlWins.redis.url == "redis://primary:6379/0")
        #expect(try urlWins.redis.endpoint() == RedisEndpoint(host: "primary", port: 6379))
    }

    @Test func redisEndpointTakesHostKeysAsTheyAre() throws {
        let bracketed = try SwitchboardConfiguration.load(
            file: nil,
            environment: secretEnvironment,
            overrides: ["redis.host": "[::1]", "redis.password": ""]
        )
        #expect(try bracketed.redis.endpoint() == RedisEndpoint(host: "::1", port: 6379))
        // No URL is built and parsed again: a password with URL syntax in it stays as it is.
        let odd = try SwitchboardConfiguration.load(
            file: nil,
            environment: secretEnvironment,
            overrides: ["redis.host": "cache", "redis.password": "%zz@:/"]
        )
        #expect(try odd.redis.endpoint() == RedisEndpoint(host: "cache", port: 6379, password: "%zz@:/"))
        #expect(odd.redis.url == nil && odd.redis.isEnabled)
        let single = try SwitchboardConfiguration.load(file: nil, environment: secretEnvironment, overrides: [:])
        #expect(try single.redis.endpoint() == nil)
        let badURL = try SwitchboardConfiguration.load(
            file: nil,
            environment: secretEnvironment,
            overrides: ["redis.url": "redis://:hunter2@host:x"]
        )
        let error = #expect(throws: RedisError.self) { try badURL.redis.endpoint() }
        #expect(error?.code == .invalidURL)
    }

    // MARK: Reference

    @Test func referenceListsEveryKey() {
        let markdown = SwitchboardConfiguration.referenceMarkdown
        #expect(markdown.hasPrefix("| key | env var | default | meaning |\n|---|---|---|---|\n"))
        for path in SwitchboardConfiguration.keyPaths {
            #expect(markdown.contains("| `\(path)` | `\(SwitchboardConfiguration.environmentVariable(forKeyPath: path)!)` |"))
        }
        #expect(markdown.contains("| `websocket.max_connections` | `SWITCHBOARD_WEBSOCKET_MAX_CONNECTIONS` | `10000` |"))
        #expect(markdown.contains("| `jwt_secret` | `SWITCHBOARD_JWT_SECRET` | **required** |"))
        #expect(markdown.contains("| `calls.ring_timeout` | `SWITCHBOARD_CALLS_RING_TIMEOUT` | `60s` |"))
        #expect(markdown.split(separator: "\n").count == SwitchboardConfiguration.keyPaths.count + 2)
    }

    @Test func readmeReferenceTableIsTheGeneratedOne() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let table = SwitchboardConfiguration.referenceMarkdown
        #expect(text.contains("### Configuration reference\n" + table), "README's table differs from `switchboard config`")
    }

    @Test func everyKeyHasItsEnvironmentVariable() {
        #expect(SwitchboardConfiguration.environmentVariable(forKeyPath: "jwt_secret") == "SWITCHBOARD_JWT_SECRET")
        #expect(
            SwitchboardConfiguration.environmentVariable(forKeyPath: "redis.channels.webrtc_signals")
                == "SWITCHBOARD_REDIS_CHANNELS_WEBRTC_SIGNALS"
        )
        #expect(SwitchboardConfiguration.environmentVariable(forKeyPath: "nope") == nil)
        #expect(Set(SwitchboardConfiguration.keyPaths).count == SwitchboardConfiguration.keyPaths.count)
    }
}
