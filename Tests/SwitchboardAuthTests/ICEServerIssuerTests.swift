import SwitchboardAuth
import SwitchboardCore
import Testing

@Suite struct ICEServerIssuerTests {
    let secret = "north-wind-secret-20b"

    @Test func turnCredentialsFollowCoturnsRESTScheme() {
        let issuer = ICEServerIssuer(
            stunURLs: ["stun:turn.example.com:3478"],
            turnURLs: ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349?transport=tcp"],
            secret: secret,
            ttl: .seconds(600)
        )
        let servers = issuer.servers(for: "alice", now: 1_700_000_000)
        #expect(servers.ttl == 600)
        #expect(
            servers.servers == [
                .init(urls: ["stun:turn.example.com:3478"]),
                .init(
                    urls: ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349?transport=tcp"],
                    username: "1700000600:alice",
                    // python3: base64.b64encode(hmac.new(secret, b"1700000600:alice", hashlib.sha1).digest())
                    credential: "6oOY0/Krc81XaJ/CRmA1rLdKkHU="
                ),
            ]
        )
    }

    @Test func credentialIsStandardBase64WithPadding() {
        // 20 bytes of HMAC-SHA1 are 28 characters with one `=`; `+` and `/` are kept (not base64url).
        for user in ["a", "bob", "carol@example.com", "d.e_f-g"] {
            let credential = ICEServerIssuer.credential(for: "1:\(user)", secret: secret)
            #expect(credential.utf8.count == 28)
            #expect(credential.hasSuffix("=") && !credential.hasSuffix("=="))
            #expect(!credential.contains("-") && !credential.contains("_"))
        }
    }

    @Test func noticeContentIsRTCIceServerShaped() {
        let issuer = ICEServerIssuer(stunURLs: ["stun:s:3478"], turnURLs: ["turn:t:3478"], secret: secret, ttl: .seconds(60))
        let content = JSONValue.object(issuer.servers(for: "bob", now: 100).content).serialized()
        let credential = ICEServerIssuer.credential(for: "160:bob", secret: secret)
        #expect(
            content
                == #"{"type":"ice-servers","iceServers":[{"urls":["stun:s:3478"]},{"urls":["turn:t:3478"],"username":"160:bob","credential":"\#(credential)"}],"ttl":60}"#
        )
    }

    @Test func withoutTURNOnlySTUNAndWithoutSecretNoCredentials() {
        let stunOnly = ICEServerIssuer(stunURLs: ["stun:s:3478"], turnURLs: [], secret: secret, ttl: .seconds(60))
        #expect(stunOnly.servers(for: "bob", now: 0).servers == [.init(urls: ["stun:s:3478"])])
        let none = ICEServerIssuer(stunURLs: [], turnURLs: [], secret: nil, ttl: .seconds(60))
        #expect(none.servers(for: "bob", now: 0).servers.isEmpty)
        let open = ICEServerIssuer(stunURLs: [], turnURLs: ["turn:t:3478"], secret: nil, ttl: .seconds(60))
        #expect(open.servers(for: "bob", now: 0).servers == [.init(urls: ["turn:t:3478"])])
    }
}
