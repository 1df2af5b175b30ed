import SwitchboardCore
import Testing

@testable import SwitchboardAuth

@Suite struct JWTTests {
    let secret = "test-secret-0123456789"
    let now: Int64 = 1_700_000_000

    var authenticator: JWTAuthenticator { JWTAuthenticator(secret: secret) }
    var signer: JWTSigner { JWTSigner(secret: secret) }

    /// A token with arbitrary header and payload JSON, correctly signed with `secret`.
    func token(header: String = #"{"alg":"HS256","typ":"JWT"}"#, payload: String, secret: String? = nil) -> String {
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        return input + "." + JWTSigner(secret: secret ?? self.secret).signature(for: input)
    }

    func reason(_ token: String, now: Int64? = nil) -> AuthenticationError.Reason? {
        do {
            _ = try authenticator.authenticate(token: token, now: now ?? self.now)
            return nil
        } catch {
            return error.reason
        }
    }

    // MARK: Accepted

    @Test func validTokenGivesIdentity() throws {
        let token = signer.token(user: "alice@example.com", name: "Alice", avatar: "https://x/a.png", expiresAt: now + 60)
        let identity = try authenticator.authenticate(token: token, now: now)
        #expect(identity == UserIdentity(id: "alice@example.com", name: "Alice", avatar: "https://x/a.png"))
    }

    @Test func nameAndAvatarAreOptional() throws {
        let token = signer.token(user: "bob", name: nil, avatar: nil, expiresAt: now + 1)
        let identity = try authenticator.authenticate(token: token, now: now)
        #expect(identity.id == "bob")
        #expect(identity.name == nil)
        #expect(identity.avatar == nil)
        let nulls = self.token(payload: #"{"sub":"bob","name":null,"avatar":null,"exp":1700000060}"#)
        #expect(try authenticator.authenticate(token: nulls, now: now).name == nil)
    }

    @Test func signerOutputMatchesPythonReference() {
        // Made with Python's hmac/base64/json (compact separators), the way PyJWT encodes.
        let expected =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYXJvbCIsIm5hbWUiOiJDYXJvbCIsImF2YXRhciI6ImEucG5nIiwiZXhwIjoyMDAwMDAwMDAwfQ.H5G4l8C48QxpsF9Emav-w92fJ9GFD_6mK6jtluDKpow"
        let token = JWTSigner(secret: "interop-secret").token(
            user: "carol",
            name: "Carol",
            avatar: "a.png",
            expiresAt: 2_000_000_000
        )
        #expect(token == expected)
    }

    @Test func acceptsPythonMadeTokenWithUnicodeEscapes() throws {
        let token =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZUBleGFtcGxlLmNvbSIsIm5hbWUiOiJBbGljZSBcdTI2MGUiLCJhdmF0YXIiOiJodHRwczovL3gvYS5wbmciLCJleHAiOjQxMDI0NDQ4MDAsImlhdCI6MTcwMDAwMDAwMH0.nXe6-rRuwdlbYYQpkHr-nKYc62TlU3O2IL-NFnuoe18"
        let identity = try JWTAuthenticator(secret: "interop-secret").authenticate(token: token, now: now)
        #expect(identity == UserIdentity(id: "alice@example.com", name: "Alice ☎", avatar: "https://x/a.png"))
    }

    @Test func acceptsPaddedSegmentsAndFractionalExp() throws {
        // Python: padded base64url, spaces in JSON, header keys in another order, exp 4102444800.75.
        let token =
            "eyJ0eXAiOiAiSldUIiwgImFsZyI6ICJIUzI1NiJ9.eyJzdWIiOiAiYm9iIiwgImV4cCI6IDQxMDI0NDQ4MDAuNzV9.06YwKAn-8wI51VckU1FcUV_qYYz-kbTpSo8lXxzbvtQ="
        let authenticator = JWTAuthenticator(secret: "interop-secret")
        #expect(try authenticator.authenticate(token: token, now: now).id == "bob")
        #expect(throws: AuthenticationError.self) { try authenticator.authenticate(token: token, now: 4_102_444_800) }
    }

    @Test func notBeforeIsHonoured() throws {
        let early = token(payload: #"{"sub":"bob","exp":1700000100,"nbf":1700000050}"#)
        #expect(reason(early) == .notYetValid)
        #expect(reason(early, now: now + 50) == nil)
        let badNbf = token(payload: #"{"sub":"bob","exp":1700000100,"nbf":"soon"}"#)
        #expect(reason(badNbf) == .invalidClaims)
    }

    @Test func leewayIsOptionalAndCapped() throws {
        let token = signer.token(user: "bob", name: nil, avatar: nil, expiresAt: now)
        #expect(reason(token) == .expired)
        #expect(try JWTAuthenticator(secret: secret, leeway: 3).authenticate(token: token, now: now + 2).id == "bob")
        #expect(JWTAuthenticator(secret: secret, leeway: 3600).leeway == JWTAuthenticator.maximumLeeway)
    }

    // MARK: Refused

    @Test func expired() {
        #expect(reason(signer.token(user: "bob", name: nil, avatar: nil, expiresAt: now)) == .expired)
        #expect(reason(signer.token(user: "bob", name: nil, avatar: nil, expiresAt: now - 1)) == .expired)
        #expect(reason(signer.token(user: "bob", name: nil, avatar: nil, expiresAt: now + 1)) == nil)
    }

    @Test func wrongSecret() {
        let token = JWTSigner(secret: "another-secret").token(user: "bob", name: nil, avatar: nil, expiresAt: now + 60)
        #expect(reason(token) == .badSignature)
    }

    @Test func algorithmNoneAndOthersAreRefused() {
        let payload = #"{"sub":"bob","exp":1700000060}"#
        let encodedPayload = Base64URL.encode(Array(payload.utf8))
        for header in [#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"None"}"#] {
            let unsigned = Base64URL.encode(Array(header.utf8)) + "." + encodedPayload + "."
            #expect(reason(unsigned) == .malformed)
            // Even with a valid HMAC over it, `none` is not HS256.
            #expect(reason(token(header: header, payload: payload)) == .malformed)
        }
        for header in [#"{"alg":"HS512"}"#, #"{"alg":"hs256"}"#, #"{"alg":"RS256"}"#, #"{"typ":"JWT"}"#, #"{"alg":256}"#] {
            #expect(reason(token(header: header, payload: payload)) == .malformed, "\(header)")
        }
        #expect(reason(token(header: #"{"alg":"HS256","crit":["exp"]}"#, payload: payload)) == .malformed)
    }

    @Test func tamperedPayload() {
        let original = signer.token(user: "bob", name: nil, avatar: nil, expiresAt: now + 60)
        let parts = original.split(separator: ".").map(String.init)
        let forged = Base64URL.encode(Array(#"{"sub":"admin","exp":1700000060}"#.utf8))
        #expect(reason(parts[0] + "." + forged + "." + parts[2]) == .badSignature)
        // Flipping one signature character also fails.
        var signature = Array(parts[2])
        signature[0] = signature[0] == "A" ? "B" : "A"
        #expect(reason(parts[0] + "." + parts[1] + "." + String(signature)) == .badSignature)
    }

    @Test(arguments: ["al ice", "a/b", "bob!", "ünïcode", "", "tab\t", "semi;colon"])
    func badSubjectCharacters(sub: String) {
        let token = signer.token(user: sub, name: nil, avatar: nil, expiresAt: now + 60)
        #expect(reason(token) == .invalidClaims)
    }

    @Test func subjectLength() {
        let max = String(repeating: "a", count: 64)
        #expect(reason(signer.token(user: max, name: nil, avatar: nil, expiresAt: now + 60)) == nil)
        #expect(reason(signer.token(user: max + "b", name: nil, avatar: nil, expiresAt: now + 60)) == .invalidClaims)
    }

    @Test func claimsMustHaveTheRightShape() {
        #expect(reason(token(payload: #"{"sub":"bob"}"#)) == .invalidClaims)  // missing exp
        #expect(reason(token(payload: #"{"exp":1700000060}"#)) == .invalidClaims)  // missing sub
        #expect(reason(token(payload: #"{"sub":"bob","exp":"1700000060"}"#)) == .invalidClaims)
        #expect(reason(token(payload: #"{"sub":42,"exp":1700000060}"#)) == .invalidClaims)
        #expect(reason(token(payload: #"{"sub":"bob","exp":1700000060,"name":7}"#)) == .invalidClaims)
        #expect(reason(token(payload: #"{"sub":"bob","exp":1700000060,"avatar":{}}"#)) == .invalidClaims)
        #expect(reason(token(payload: #"["sub","bob"]"#)) == .malformed)
        #expect(reason(token(payload: #"{"sub":"bob","exp":17000000600,}"#)) == .malformed)
        #expect(reason(token(payload: #"{"sub":"bob","exp":1e300}"#)) == .invalidClaims)
        #expect(reason(token(payload: #"{"sub":"bob","exp":1.7000001e9}"#)) == nil)
    }

    @Test func malformedTokens() {
        let valid = signer.token(user: "bob", name: nil, avatar: nil, expiresAt: now + 60)
        let parts = valid.split(separator: ".").map(String.init)
        #expect(reason("") == .missing)
        for token in [
            "abc", "a.b", "a.b.c.d", parts[0] + "." + parts[1], parts[0] + "." + parts[1] + ".",
            "." + parts[1] + "." + parts[2], parts[0] + ".." + parts[2],
            "eyJ+bGciOiJIUzI1NiJ9." + parts[1] + "." + parts[2],  // standard base64 '+', not base64url
            "e." + parts[1] + "." + parts[2],  // impossible length
            parts[0] + "." + parts[1] + "." + parts[2] + "===",
            " " + valid,
        ] {
            #expect(reason(token) == .malformed, "\(token)")
        }
    }

    @Test func oversizedTokenIsRefusedBeforeDecoding() {
        let big = signer.token(user: "bob", name: String(repeating: "x", count: 9000), avatar: nil, expiresAt: now + 60)
        #expect(big.utf8.count > JWTAuthenticator.maximumTokenBytes)
        #expect(reason(big) == .malformed)
    }

    @Test func errorsDescribeThemselves() {
        let error = AuthenticationError(.expired, "token expired")
        #expect(error.description == "expired: token expired")
        #expect(error.message == "token expired")
    }

    // MARK: Base64url

    @Test func base64URLRoundTripsAndIsStrict() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 250) }
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64URL.decode(Array(text.utf8)) == bytes)
            let padded = text + String(repeating: "=", count: (4 - text.utf8.count % 4) % 4)
            #expect(Base64URL.decode(Array(padded.utf8)) == bytes)
        }
        #expect(Base64URL.decode(Array("QQ".utf8)) == [0x41])
        #expect(Base64URL.decode(Array("QR".utf8)) == nil)  // non-zero unused bits
        #expect(Base64URL.decode(Array("QQ=".utf8)) == nil)  // wrong padding
        #expect(Base64URL.decode(Array("QQ=A".utf8)) == nil)
        #expect(Base64URL.decode(Array("Q".utf8)) == nil)
        #expect(Base64URL.decode(Array("QUJD=".utf8)) == nil)
        #expect(Base64URL.decode(Array("a/b+".utf8)) == nil)
    }

    // MARK: Extraction

    @Test func extractsFromQuery() throws {
        let found = try #require(BearerToken.extract(query: "token=abc.def.ghi", authorization: nil, webSocketProtocols: nil))
        #expect(found.token == "abc.def.ghi")
        #expect(found.protocolEntry == nil)
        let decoded = try #require(
            BearerToken.extract(query: "?room=1&token=a%2Eb%2ec&x=y", authorization: nil, webSocketProtocols: nil)
        )
        #expect(decoded.token == "a.b.c")
        #expect(BearerToken.extract(query: "tokens=abc&xtoken=1", authorization: nil, webSocketProtocols: nil) == nil)
    }

    @Test func extractsFromAuthorizationHeader() throws {
        for header in ["Bearer abc.def.ghi", "bearer abc.def.ghi", "BEARER   abc.def.ghi  ", " Bearer\tabc.def.ghi"] {
            let found = try #require(BearerToken.extract(query: nil, authorization: header, webSocketProtocols: nil))
            #expect(found.token == "abc.def.ghi")
            #expect(found.protocolEntry == nil)
        }
        for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "abc.def.ghi", ""] {
            #expect(BearerToken.extract(query: nil, authorization: header, webSocketProtocols: nil) == nil, "\(header)")
        }
    }

    @Test func extractsFromWebSocketProtocol() throws {
        let found = try #require(
            BearerToken.extract(query: nil, authorization: nil, webSocketProtocols: "switchboard.v1, bearer.abc.def.ghi,other")
        )
        #expect(found.token == "abc.def.ghi")
        #expect(found.protocolEntry == "bearer.abc.def.ghi")
        #expect(BearerToken.extract(query: nil, authorization: nil, webSocketProtocols: "chat, bearer.") == nil)
        #expect(BearerToken.extract(query: nil, authorization: nil, webSocketProtocols: "") == nil)
    }

    @Test func precedenceIsQueryThenHeaderThenProtocol() throws {
        let all = try #require(
            BearerToken.extract(
                query: "token=fromQuery",
                authorization: "Bearer fromHeader",
                webSocketProtocols: "bearer.fromProtocol"
            )
        )
        #expect(all.token == "fromQuery")
        // The offered bearer entry is still returned: the browser needs it echoed.
        #expect(all.protocolEntry == "bearer.fromProtocol")
        let noQuery = try #require(
            BearerToken.extract(query: "token=", authorization: "Bearer fromHeader", webSocketProtocols: "bearer.fromProtocol")
        )
        #expect(noQuery.token == "fromHeader")
        let onlyProtocol = try #require(
            BearerToken.extract(query: "a=b", authorization: "Basic x", webSocketProtocols: "bearer.fromProtocol")
        )
        #expect(onlyProtocol.token == "fromProtocol")
        #expect(BearerToken.extract(query: nil, authorization: nil, webSocketProtocols: nil) == nil)
    }

    @Test func extractedTokenAuthenticates() throws {
        let token = signer.token(user: "carol", name: "C", avatar: nil, expiresAt: now + 60)
        let found = try #require(BearerToken.extract(query: nil, authorization: nil, webSocketProtocols: "bearer." + token))
        #expect(try authenticator.authenticate(token: found.token, now: now).id == "carol")
    }
}
