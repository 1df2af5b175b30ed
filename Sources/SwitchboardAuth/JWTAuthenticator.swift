import Crypto
import SwitchboardCore

/// Verifies the HS256 JWTs clients present at the upgrade (PROTOCOL.md §2) and turns them into identities.
///
/// Accepted: three base64url segments (padding optional); a header whose `alg` is exactly `HS256`
/// (`none` and every other algorithm are refused, as is a `crit` header); a signature that matches
/// (compared in constant time); a payload with
/// - `sub`: required string, a valid user id (1-64 characters of `[A-Za-z0-9._@-]`);
/// - `exp`: required number of unix seconds; the token is valid while `now < exp + leeway`;
/// - `nbf`: optional number; the token is valid once `now >= nbf - leeway`;
/// - `name`, `avatar`: optional strings (`null` counts as absent).
///
/// Other claims (`iat`, `iss`, `aud`, …) are ignored. Tokens longer than ``maximumTokenBytes`` are
/// refused before any decoding.
package struct JWTAuthenticator: Sendable {
    /// The longest token accepted, in bytes.
    package static let maximumTokenBytes = 8 * 1024

    /// The most clock skew that may be configured, in seconds.
    package static let maximumLeeway: Int64 = 5

    private let key: SymmetricKey
    /// Seconds of clock skew tolerated on `exp` and `nbf`; 0 unless set at init, at most ``maximumLeeway``.
    package let leeway: Int64

    /// An authenticator for tokens signed with `secret` (its UTF-8 bytes are the HMAC key).
    ///
    /// - Parameter leeway: seconds of clock skew tolerated on `exp` and `nbf`; clamped to
    ///   `0...maximumLeeway`. The default, 0, applies `exp` and `nbf` exactly.
    package init(secret: String, leeway: Int64 = 0) {
        self.key = SymmetricKey(data: Array(secret.utf8))
        self.leeway = min(max(leeway, 0), Self.maximumLeeway)
    }

    /// The identity `token` proves at `now` (unix seconds), or why it proves none.
    package func authenticate(token: String, now: Int64) throws(AuthenticationError) -> UserIdentity {
        let utf8 = Array(token.utf8)
        guard !utf8.isEmpty else { throw AuthenticationError(.missing, "no token") }
        guard utf8.count <= Self.maximumTokenBytes else {
            throw AuthenticationError(.malformed, "token longer than \(Self.maximumTokenBytes) bytes")
        }
        let segments = utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard segments.count == 3, segments.allSatisfy({ !$0.isEmpty }) else {
            throw AuthenticationError(.malformed, "a token is three non-empty dot-separated segments")
        }

        let header = try Self.decodeObject(segments[0], name: "header")
        guard let algorithm = header["alg"]?.stringValue else {
            throw AuthenticationError(.malformed, "header has no \"alg\"")
        }
        guard algorithm == "HS256" else {
            throw AuthenticationError(.malformed, "algorithm \"\(algorithm.prefix(32))\" is not accepted (only HS256)")
        }
        guard header["crit"] == nil else {
            throw AuthenticationError(.malformed, "critical header extensions are not supported")
        }

        guard let signature = Base64URL.decode(segments[2]) else {
            throw AuthenticationError(.malformed, "signature is not base64url")
        }
        let signingInput = utf8[..<segments[1].endIndex]
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signingInput, using: key) else {
            throw AuthenticationError(.badSignature, "signature does not match")
        }

        let claims = try Self.decodeObject(segments[1], name: "payload")
        return try identity(from: claims, now: now)
    }

    private func identity(from claims: JSONObject, now: Int64) throws(AuthenticationError) -> UserIdentity {
        guard let subject = claims["sub"] else { throw AuthenticationError(.invalidClaims, "missing \"sub\"") }
        guard let id = subject.stringValue, UserIdentity.isValidUserID(id) else {
            throw AuthenticationError(.invalidClaims, "\"sub\" must be 1-64 characters of [A-Za-z0-9._@-]")
        }
        guard let expiry = claims["exp"] else { throw AuthenticationError(.invalidClaims, "missing \"exp\"") }
        guard let expiresAt = Self.seconds(expiry) else {
            throw AuthenticationError(.invalidClaims, "\"exp\" must be a number of seconds")
        }
        guard now < expiresAt.addingClamped(leeway) else {
            throw AuthenticationError(.expired, "token expired")
        }
        if let notBefore = claims["nbf"], !notBefore.isNull {
            guard let validFrom = Self.seconds(notBefore) else {
                throw AuthenticationError(.invalidClaims, "\"nbf\" must be a number of seconds")
            }
            guard now.addingClamped(leeway) >= validFrom else {
                throw AuthenticationError(.notYetValid, "token not valid yet")
            }
        }
        let name = try Self.optionalString(claims["name"], claim: "name")
        let avatar = try Self.optionalString(claims["avatar"], claim: "avatar")
        guard let identity = UserIdentity(id: id, name: name, avatar: avatar) else {
            throw AuthenticationError(.invalidClaims, "\"sub\" is not a valid user id")
        }
        return identity
    }

    private static func decodeObject(_ segment: ArraySlice<UInt8>, name: String) throws(AuthenticationError) -> JSONObject {
        guard let json = Base64URL.decode(segment) else {
            throw AuthenticationError(.malformed, "\(name) is not base64url")
        }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: json)
        } catch {
            throw AuthenticationError(.malformed, "\(name) is not JSON (\(error.message))")
        }
        guard let object = value.objectValue else {
            throw AuthenticationError(.malformed, "\(name) is not a JSON object")
        }
        return object
    }

    /// A NumericDate as whole seconds (fractions round down), or `nil` when it is not a finite number.
    private static func seconds(_ value: JSONValue) -> Int64? {
        if let whole = value.int64Value { return whole }
        guard let real = value.doubleValue, real.isFinite else { return nil }
        let floored = real.rounded(.down)
        guard floored >= -9.0e18, floored <= 9.0e18 else { return nil }
        return Int64(floored)
    }

    private static func optionalString(_ value: JSONValue?, claim: String) throws(AuthenticationError) -> String? {
        guard let value, !value.isNull else { return nil }
        guard let string = value.stringValue else {
            throw AuthenticationError(.invalidClaims, "\"\(claim)\" must be a string")
        }
        return string
    }
}

extension Int64 {
    fileprivate func addingClamped(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}
