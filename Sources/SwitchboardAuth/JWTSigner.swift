import Crypto
import SwitchboardCore

/// Issues HS256 JWTs that ``JWTAuthenticator`` accepts (used by `switchboard token` and tests).
package struct JWTSigner: Sendable {
    private let key: SymmetricKey

    /// A signer using `secret` (its UTF-8 bytes are the HMAC key), the same secret the nodes verify with.
    package init(secret: String) {
        self.key = SymmetricKey(data: Array(secret.utf8))
    }

    /// A token for `user` (the `sub` claim) that expires at `expiresAt` (unix seconds).
    ///
    /// The header is `{"alg":"HS256","typ":"JWT"}`; the payload holds `sub`, then `name` and
    /// `avatar` when given, then `exp`. The user id is not checked here: a token for an invalid
    /// id is refused by ``JWTAuthenticator`` (see `UserIdentity.isValidUserID`).
    package func token(user: String, name: String?, avatar: String?, expiresAt: Int64) -> String {
        var claims: JSONObject = ["sub": .string(user)]
        if let name { claims["name"] = .string(name) }
        if let avatar { claims["avatar"] = .string(avatar) }
        claims["exp"] = .integer(expiresAt)
        return token(claims: claims)
    }

    /// A token carrying exactly `claims` as its payload, for callers that need other claims (`nbf`, `iat`, …).
    package func token(claims: JSONObject) -> String {
        let header: JSONObject = ["alg": "HS256", "typ": "JWT"]
        var signingInput = Base64URL.encode(Self.bytes(header))
        signingInput += "."
        signingInput += Base64URL.encode(Self.bytes(claims))
        return signingInput + "." + signature(for: signingInput)
    }

    /// The base64url HMAC-SHA256 of `signingInput` (`header.payload`).
    func signature(for signingInput: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: key)
        return Base64URL.encode(Array(code))
    }

    private static func bytes(_ object: JSONObject) -> [UInt8] {
        var bytes: [UInt8] = []
        object.write(into: &bytes)
        return bytes
    }
}
