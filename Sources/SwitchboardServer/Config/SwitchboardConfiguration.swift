import Logging
import NIOCore

/// Everything a node is configured with (PROTOCOL.md §7).
///
/// Build one with ``load(file:environment:overrides:)``, which layers command-line flags over
/// `SWITCHBOARD_*` environment variables over the YAML file over the defaults, all driven by one
/// table of keys (see ``referenceMarkdown``). The property initial values below are placeholders
/// that loading always replaces; the defaults live in the key table only.
package struct SwitchboardConfiguration: Sendable, Equatable {
    /// `server.*`: where and as whom this node listens.
    package struct Server: Sendable, Equatable {
        /// `server.host`: the address to bind.
        package var host: String = ""
        /// `server.port`: the TCP port; 0 picks any free port.
        package var port: Int = 0
        /// `server.threads`: event loop threads, 0 for one per two cores (``eventLoopCount``).
        package var threads: Int = 0

        /// The event loops to run: `threads`, or when 0, one per two cores and at least one. A relay
        /// between parties on different loops costs a wake-up of the second loop (an `eventfd` write, an
        /// `epoll_wait` and a context switch, as much CPU as the relay itself), and the kernel's network
        /// stack needs the other cores about as much as the loops do (BENCHMARKS.md, "Event loops").
        package var eventLoopCount: Int {
            threads > 0 ? threads : max(1, System.coreCount / 2)
        }
        /// `server.node_id`: this node's name in the cluster (presence entries, heartbeats, logs).
        package var nodeID: String = ""
        /// `server.request_timeout`: how long a connection may take to deliver a complete request
        /// head, from accept and again after each response; longer, and it is closed.
        package var requestTimeout: Duration = .zero
        /// `server.max_pending_connections`: connections not upgraded to WebSocket held at once.
        package var maxPendingConnections: Int = 0
        /// `server.max_pending_connections_per_address`: the same, per client address.
        package var maxPendingConnectionsPerAddress: Int = 0
        /// `server.trusted_proxies`: whose `X-Forwarded-For` is believed.
        package var trustedProxies = TrustedProxies()
        /// `server.demo`: serve `/`, `/demo` and the browser client module (off in production).
        package var demo: Bool = false
    }

    /// `database.*`: where call records go.
    package struct Database: Sendable, Equatable {
        /// `database.url`: `sqlite:PATH` or `postgres://…`.
        package var url: String = ""
    }

    /// `records.*`: the queue of call records on their way to the database.
    package struct Records: Sendable, Equatable {
        /// `records.max_queued`: calls whose records may wait at once; beyond, a new call's record is dropped.
        package var maxQueued: Int = 0
    }

    /// `redis.*`: the cluster backend; absent means single-node mode.
    package struct Redis: Sendable, Equatable {
        /// `redis.channels.*`: pub/sub channel names.
        package struct Channels: Sendable, Equatable {
            /// `redis.channels.webrtc_signals`: where messages for users on other nodes are published.
            package var webrtcSignals: String = ""
        }

        /// `redis.url`: the Redis to use, `redis://[:password@]host:port[/db]`, as given; when it is
        /// `nil`, `redis.host` (and friends) name the Redis, and without them this is single-node mode.
        /// ``endpoint()`` is the Redis either way.
        package var url: String?
        /// `redis.host`: seed-compatible alternative to `redis.url`.
        package var host: String?
        /// `redis.port`: with `redis.host`; 6379 when only the host is given.
        package var port: Int?
        /// `redis.password`: with `redis.host`.
        package var password: String?
        /// `redis.db`: with `redis.host`.
        package var db: Int?
        /// Pub/sub channel names.
        package var channels = Channels()
        /// `redis.heartbeat_interval`: how often this node refreshes its entry in `webrtc:nodes`.
        package var heartbeatInterval: Duration = .zero
        /// `redis.publish_window`: the least time between two `PUBLISH`es to one other node.
        package var publishWindow: Duration = .zero
        /// `redis.retry_max_bytes`: bytes of messages per other node whose delivery is open.
        package var retryMaxBytes: Int = 0
        /// `redis.retry_max_messages`: the same in messages.
        package var retryMaxMessages: Int = 0
        /// `redis.retry_max_age`: how long a message for a node whose inbox is away is retried.
        package var retryMaxAge: Duration = .zero
        /// `redis.replay_max_bytes`: bytes of delivered messages per other node kept for a replay.
        package var replayMaxBytes: Int = 0
        /// `redis.replay_max_messages`: the same in messages.
        package var replayMaxMessages: Int = 0
        /// `redis.replay_max_age`: how long a delivered message is kept for a replay.
        package var replayMaxAge: Duration = .zero
        /// `redis.reorder_max_bytes`: bytes of messages per other node waiting for a missing one.
        package var reorderMaxBytes: Int = 0

        /// Whether a cluster backend is configured (`redis.url` or `redis.host`).
        package var isEnabled: Bool { url != nil || host != nil }
    }

    /// `websocket.*`: per-connection limits and keep-alive.
    package struct WebSocket: Sendable, Equatable {
        /// `websocket.max_connections`: open WebSockets this node accepts at once.
        package var maxConnections: Int = 0
        /// `websocket.read_timeout`: a socket silent this long (no frame, no pong) is closed.
        package var readTimeout: Duration = .zero
        /// `websocket.write_timeout`: a write that cannot complete this fast closes the socket.
        package var writeTimeout: Duration = .zero
        /// `websocket.ping_interval`: how often the server pings an idle socket.
        package var pingInterval: Duration = .zero
        /// `websocket.pong_timeout`: how long a ping may go unanswered.
        package var pongTimeout: Duration = .zero
        /// `websocket.max_message_bytes`: the largest frame/message accepted; larger closes with 1009.
        package var maxMessageBytes: Int = 0
        /// `websocket.max_pending_bytes`: unsent data held for a client that does not read; more closes with 1008.
        package var maxPendingBytes: Int = 0
    }

    /// `calls.*`: call lifecycle timers.
    package struct Calls: Sendable, Equatable {
        /// `calls.ring_timeout`: how long an invite rings before both parties get `call-hangup` (timeout).
        package var ringTimeout: Duration = .zero
        /// `calls.reconnect_grace`: how long a party's dropped socket may stay away during a call.
        package var reconnectGrace: Duration = .zero
    }

    /// `ice.*`: the STUN servers clients are told about.
    package struct ICE: Sendable, Equatable {
        /// `ice.stun_urls`: STUN URLs for the `ice-servers` notice.
        package var stunURLs: [String] = []
    }

    /// `turn.*`: the TURN relay clients are told about, and its credentials.
    package struct TURN: Sendable, Equatable {
        /// `turn.urls`: TURN URLs for the `ice-servers` notice.
        package var urls: [String] = []
        /// `turn.secret`: coturn's `static-auth-secret`; `nil` issues no credentials.
        package var secret: String?
        /// `turn.ttl`: how long issued credentials are valid.
        package var ttl: Duration = .zero
    }

    /// `limits.*`: per-user rate limits.
    package struct Limits: Sendable, Equatable {
        /// `limits.messages_per_second`: messages a user may send per second, sustained.
        package var messagesPerSecond: Int = 0
        /// `limits.messages_burst`: messages a user may send back to back.
        package var messagesBurst: Int = 0
        /// `limits.invites_per_minute`: `call-invite`s a user may send per minute.
        package var invitesPerMinute: Int = 0
        /// `limits.upgrades_per_second`: WebSocket upgrades per second per user and per client address.
        package var upgradesPerSecond: Int = 0
    }

    /// `log.*`.
    /// `hooks.*`: the app's backend (PROTOCOL.md §10): invite permission and call event webhooks.
    package struct Hooks: Sendable, Equatable {
        /// `hooks.invite_url`: asked before an invite rings; `nil`: every invite may ring.
        package var inviteURL: String?
        /// `hooks.secret`: the key every request to the backend is signed with.
        package var secret: String?
        /// `hooks.invite_timeout`: how long the backend may take to answer, connecting included.
        package var inviteTimeout: Duration = .zero
        /// `hooks.invite_on_error`: whether an invite rings when the backend gives no valid answer.
        package var inviteOnErrorAllows: Bool = false
        /// `hooks.invite_cache_ttl`: how long an allow or deny is kept per (caller, callee); 0 keeps none.
        package var inviteCacheTTL: Duration = .zero
        /// `hooks.invite_max_in_flight`: questions to the backend open at once on this node.
        package var inviteMaxInFlight: Int = 0
        /// `hooks.events_url`: where call events are posted; `nil`: nowhere.
        package var eventsURL: String?
        /// `hooks.events_retry`: how long an event's delivery is retried before it is given up.
        package var eventsRetry: Duration = .zero
        /// `hooks.events_max_queued`: events waiting for delivery at once.
        package var eventsMaxQueued: Int = 0
        /// `hooks.events_max_queued_bytes`: the same in bytes.
        package var eventsMaxQueuedBytes: Int = 0
    }

    /// `blocks.*`: users' block lists.
    package struct Blocks: Sendable, Equatable {
        /// `blocks.max_per_user`: users one user may block.
        package var maxPerUser: Int = 0
    }

    package struct Log: Sendable, Equatable {
        /// `log.level`: the lowest level written.
        package var level: Logger.Level = .info
    }

    /// `metrics.*`: where `/metrics` is served.
    package struct Metrics: Sendable, Equatable {
        /// `metrics.port`: serve `/metrics` on its own listener on this port (and not on the main
        /// port); `nil` serves it on the main port.
        package var port: Int?
    }

    /// `testing.*`: switches for conformance and integration tests.
    package struct TestingOptions: Sendable, Equatable {
        /// `testing.echo_route`: also serve a WebSocket echo at `/autobahn`.
        package var echoRoute: Bool = false
    }

    /// `server.*`.
    package var server = Server()
    /// `jwt_secret`: the HS256 secret tokens are signed with (required).
    package var jwtSecret: String = ""
    /// `database.*`.
    package var database = Database()
    /// `records.*`.
    package var records = Records()
    /// `redis.*`.
    package var redis = Redis()
    /// `websocket.*`.
    package var websocket = WebSocket()
    /// `calls.*`.
    package var calls = Calls()
    /// `ice.*`.
    package var ice = ICE()
    /// `turn.*`.
    package var turn = TURN()
    /// `limits.*`.
    package var limits = Limits()
    /// `hooks.*`.
    package var hooks = Hooks()
    /// `blocks.*`.
    package var blocks = Blocks()
    /// `log.*`.
    package var log = Log()
    /// `metrics.*`.
    package var metrics = Metrics()
    /// `testing.*`.
    package var testing = TestingOptions()

    /// The defaults for every key, with `jwtSecret` as the secret (for tests and embedding).
    package init(jwtSecret: String) {
        self.init(placeholders: ())
        for key in Self.keys {
            do throws(ConfigurationError) {
                try key.applyDefault(to: &self)
            } catch {
                preconditionFailure("built-in default is invalid: \(error)")
            }
        }
        self.jwtSecret = jwtSecret
    }

    private init(placeholders: Void) {}
}

extension SwitchboardConfiguration {
    /// Loads the configuration: `overrides` (command-line flags, keyed by key path such as
    /// `server.port`) win over `environment` (`SWITCHBOARD_` + key path in capitals with `.` as `_`),
    /// which wins over the YAML `file`, which wins over the defaults.
    ///
    /// An unknown key in the file or in `overrides` is an error; unknown `SWITCHBOARD_*` environment
    /// variables are ignored. An empty value clears an optional key (e.g. `redis.url`) and is invalid
    /// for the others. When `redis.url` is not set but `redis.host` is, the Redis is `redis.host`,
    /// `redis.port` (default 6379), `redis.password` and `redis.db` (see ``Redis-swift.struct/endpoint()``).
    package static func load(
        file: String?,
        environment: [String: String],
        overrides: [String: String]
    ) throws(ConfigurationError) -> SwitchboardConfiguration {
        var configuration = SwitchboardConfiguration(placeholders: ())
        var assigned: Set<String> = []
        for key in keys {
            try key.applyDefault(to: &configuration)
        }
        if let file {
            for entry in try ConfigurationFile.entries(path: file) {
                guard let key = key(forPath: entry.path) else {
                    throw ConfigurationError(key: entry.path, problem: "unknown key", source: entry.source)
                }
                try key.apply(entry.value, to: &configuration, source: entry.source)
                assigned.insert(key.path)
            }
        }
        for key in keys {
            guard let value = environment[key.environmentVariable] else { continue }
            try key.apply(value, to: &configuration, source: "environment variable \(key.environmentVariable)")
            assigned.insert(key.path)
        }
        for (path, value) in overrides.sorted(by: { $0.key < $1.key }) {
            guard let key = key(forPath: path) else {
                throw ConfigurationError(key: path, problem: "unknown key", source: "command line")
            }
            try key.apply(value, to: &configuration, source: "command line")
            assigned.insert(key.path)
        }
        for key in keys where key.defaultValue.isRequired && !assigned.contains(key.path) {
            throw ConfigurationError(
                key: key.path,
                problem: "missing; set the \(key.environmentVariable) environment variable or \(key.path) in the config file"
            )
        }
        if configuration.redis.retryMaxBytes < configuration.websocket.maxMessageBytes + 65536 {
            throw ConfigurationError(
                key: "redis.retry_max_bytes",
                value: "\(configuration.redis.retryMaxBytes)",
                problem:
                    "must be at least websocket.max_message_bytes (\(configuration.websocket.maxMessageBytes)) + 64 KiB, or the largest messages could never cross the cluster"
            )
        }
        if configuration.hooks.secret == nil, configuration.hooks.inviteURL != nil || configuration.hooks.eventsURL != nil {
            throw ConfigurationError(
                key: "hooks.secret",
                problem:
                    "missing: hooks.invite_url or hooks.events_url is set, and every request to the backend is signed; set the SWITCHBOARD_HOOKS_SECRET environment variable or hooks.secret in the config file"
            )
        }
        return configuration
    }

    static func key(forPath path: String) -> ConfigurationKey? {
        keys.first { $0.path == path }
    }
}
