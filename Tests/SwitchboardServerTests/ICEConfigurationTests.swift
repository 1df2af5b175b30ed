import Foundation
import Testing

@testable import SwitchboardServer

/// `ice.stun_urls`, `turn.urls`, `turn.secret`, `turn.ttl` (PROTOCOL.md §8).
@Suite struct ICEConfigurationTests {
    let environment = ["SWITCHBOARD_JWT_SECRET": "s3cret-0123456789abcdef0123456789abcdef"]

    func load(_ extra: [String: String] = [:], file: String? = nil) throws(ConfigurationError) -> SwitchboardConfiguration {
        try SwitchboardConfiguration.load(file: file, environment: environment.merging(extra) { $1 }, overrides: [:])
    }

    @Test func defaultsIssueNoServersAndADayLongTTL() throws {
        let configuration = try load()
        #expect(configuration.ice.stunURLs.isEmpty)
        #expect(configuration.turn.urls.isEmpty)
        #expect(configuration.turn.secret == nil)
        #expect(configuration.turn.ttl == .seconds(24 * 3600))
    }

    @Test func listsAreCommaSeparatedInTheEnvironmentAndSequencesInTheFile() throws {
        let fromEnvironment = try load([
            "SWITCHBOARD_TURN_URLS": "turn:h:3478?transport=udp, turns:h:5349?transport=tcp",
            "SWITCHBOARD_ICE_STUN_URLS": "stun:h:3478",
            "SWITCHBOARD_TURN_SECRET": "twenty-bytes-or-more-secret",
            "SWITCHBOARD_TURN_TTL": "2h",
        ])
        #expect(fromEnvironment.turn.urls == ["turn:h:3478?transport=udp", "turns:h:5349?transport=tcp"])
        #expect(fromEnvironment.ice.stunURLs == ["stun:h:3478"])
        #expect(fromEnvironment.turn.secret == "twenty-bytes-or-more-secret")
        #expect(fromEnvironment.turn.ttl == .seconds(7200))

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ice-\(UInt64.random(in: 0...UInt64.max)).yaml")
        try "ice: {stun_urls: [\"stun:a:3478\", \"stun:b:3478\"]}\nturn: {urls: [\"turn:t:3478\"], ttl: 30m}\n"
            .write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let fromFile = try load(file: url.path)
        #expect(fromFile.ice.stunURLs == ["stun:a:3478", "stun:b:3478"])
        #expect(fromFile.turn.urls == ["turn:t:3478"])
        #expect(fromFile.turn.ttl == .seconds(1800))
    }

    @Test func wrongSchemesAndShortSecretsAreRefusedNamingTheKey() throws {
        for (variable, value, key) in [
            ("SWITCHBOARD_TURN_URLS", "stun:h:3478", "turn.urls"),
            ("SWITCHBOARD_ICE_STUN_URLS", "turn:h:3478", "ice.stun_urls"),
            ("SWITCHBOARD_ICE_STUN_URLS", "stun:", "ice.stun_urls"),
            ("SWITCHBOARD_TURN_SECRET", "short", "turn.secret"),
            ("SWITCHBOARD_TURN_TTL", "0s", "turn.ttl"),
        ] {
            let error = #expect(throws: ConfigurationError.self, "\(variable)=\(value)") { try load([variable: value]) }
            #expect(error?.key == key)
        }
        let secret = #expect(throws: ConfigurationError.self) { try load(["SWITCHBOARD_TURN_SECRET": "short"]) }
        #expect(secret?.description.contains("short") == false, "a secret stays out of errors")
        #expect(SwitchboardConfiguration.key(forPath: "turn.secret")?.isSecret == true)
    }
}
