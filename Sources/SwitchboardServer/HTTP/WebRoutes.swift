import HTTPTypes
import Hummingbird
import SwitchboardWeb

extension Router where Context == BasicRequestContext {
    /// `GET /`, `/demo` and their scripts and style sheet (`server.demo`; off, they are not routed: 404).
    func addWebRoutes() {
        for file in WebFiles.all {
            get(RouterPath(file.path)) { request, _ in Response.webFile(file, ifNoneMatch: request.headers[.ifNoneMatch]) }
        }
    }
}

extension HTTPField.Name {
    static let permissionsPolicy = Self("Permissions-Policy")!
    static let referrerPolicy = Self("Referrer-Policy")!
}

extension Response {
    /// What the pages may do: their own scripts, styles and API (`'self'` covers the same
    /// origin's `ws:`/`wss:`), camera and microphone streams, nothing else: no inline script,
    /// no framing, no form posts, no third-party anything.
    static let webPagePolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        + "media-src 'self' blob: mediastream:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    /// `file`, or 304 when the client's `If-None-Match` names its current bytes. `no-cache`: the
    /// URLs carry no version, so a browser revalidates every time (a 304 when nothing changed),
    /// and a node upgrade is seen at once.
    static func webFile(_ file: WebFile, ifNoneMatch: String?) -> Response {
        var headers: HTTPFields = [
            .contentType: file.contentType,
            .cacheControl: "no-cache",
            .eTag: file.etag,
            .xContentTypeOptions: "nosniff",
            // Demo links carry the token in the URL fragment, which is never sent anywhere; no
            // referrer keeps the page's address out of other requests too.
            .referrerPolicy: "no-referrer",
        ]
        if file.isPage {
            headers[.contentSecurityPolicy] = webPagePolicy
            headers[.permissionsPolicy] = "camera=(self), microphone=(self), geolocation=(), payment=()"
        }
        // Our ETags hold no spaces: dropping them trims the list's entries.
        if let ifNoneMatch, ifNoneMatch.split(separator: ",").contains(where: { $0.filter { $0 != " " } == file.etag }) {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }
}
