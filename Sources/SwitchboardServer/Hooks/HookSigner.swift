import Crypto
import SwitchboardBasics

/// Signs a request to the app's backend (PROTOCOL.md §10): `X-Switchboard-Timestamp` (unix seconds) and
/// `X-Switchboard-Signature: sha256=<hex HMAC-SHA256(hooks.secret, timestamp + "." + body)>`.
struct HookSigner: Sendable {
    private let key: SymmetricKey

    init(secret: String) {
        key = SymmetricKey(data: Array(secret.utf8))
    }

    /// The `X-Switchboard-Signature` value for `body` sent at `timestamp`.
    func signature(timestamp: Int64, body: [UInt8]) -> String {
        var authenticator = HMAC<SHA256>(key: key)
        authenticator.update(data: Array("\(timestamp).".utf8))
        authenticator.update(data: body)
        return "sha256=" + Hex.string(authenticator.finalize())
    }
}
