/// A file the node serves over HTTP when `server.demo` is on.
package struct WebFile: Sendable {
    /// The URL path it answers, e.g. `/demo`.
    package let path: String
    /// Its `Content-Type`.
    package let contentType: String
    /// Its bytes, exactly as in `Sources/SwitchboardWeb/Files`.
    package let bytes: [UInt8]
    /// A strong validator of `bytes` (FNV-1a 64), for `ETag` and `If-None-Match`.
    package let etag: String
    /// An HTML page (served with a Content-Security-Policy) rather than a script or style sheet.
    package var isPage: Bool { contentType.hasPrefix("text/html") }

    init(path: String, contentType: String, bytes: [UInt8]) {
        self.path = path
        self.contentType = contentType
        self.bytes = bytes
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        self.etag = "\"" + String(repeating: "0", count: 16 - hex.count) + hex + "\""
    }
}

/// The landing page, the demo and the browser client module (`Files/`).
///
/// SwiftPM compiles the files into the binary (`resources: [.embedInCode("Files")]` makes them
/// `PackageResources` byte arrays), so a node, its Docker image included, needs nothing beside the
/// executable at run time; Tests/integration/test_web.py checks that the bytes served are the files'.
package enum WebFiles {
    package static let all: [WebFile] = [
        WebFile(path: "/", contentType: "text/html; charset=utf-8", bytes: PackageResources.index_html),
        WebFile(path: "/demo", contentType: "text/html; charset=utf-8", bytes: PackageResources.demo_html),
        WebFile(path: "/site.css", contentType: "text/css; charset=utf-8", bytes: PackageResources.site_css),
        WebFile(path: "/demo.js", contentType: "text/javascript; charset=utf-8", bytes: PackageResources.demo_js),
        WebFile(
            path: "/switchboard-client.js",
            contentType: "text/javascript; charset=utf-8",
            bytes: PackageResources.switchboard_client_js
        ),
    ]
}
