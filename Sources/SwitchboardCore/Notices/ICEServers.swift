/// The `ice-servers` notice (PROTOCOL.md §8): what a client passes to `new RTCPeerConnection({iceServers})`,
/// and how long its TURN credentials last.
package struct ICEServers: Sendable, Equatable {
    /// One `RTCIceServer`: its URLs, and for TURN the credentials.
    package struct Server: Sendable, Equatable {
        package var urls: [String]
        package var username: String?
        package var credential: String?

        package init(urls: [String], username: String? = nil, credential: String? = nil) {
            self.urls = urls
            self.username = username
            self.credential = credential
        }
    }

    /// The STUN entry first (when there are STUN URLs), then the TURN entry (when there are TURN URLs).
    package var servers: [Server]
    /// The credentials' remaining lifetime, in seconds.
    package var ttl: Int64

    package init(servers: [Server], ttl: Int64) {
        self.servers = servers
        self.ttl = ttl
    }

    /// `{"type":"ice-servers","iceServers":[…],"ttl":N}`: the notice's content, and `GET /api/ice-servers`.
    package var content: JSONObject {
        let entries = servers.map { server -> JSONValue in
            var entry: JSONObject = ["urls": .array(server.urls.map(JSONValue.string))]
            if let username = server.username { entry["username"] = .string(username) }
            if let credential = server.credential { entry["credential"] = .string(credential) }
            return .object(entry)
        }
        return ["type": "ice-servers", "iceServers": .array(entries), "ttl": .integer(ttl)]
    }
}
