extension SwitchboardConfiguration {
    /// Every configuration key, in documentation order: the one table behind file, environment and
    /// flag parsing, defaults, and ``referenceMarkdown``.
    static let keys: [ConfigurationKey] = [
        ConfigurationKey(
            "server.host",
            \.server.host,
            default: .value("0.0.0.0"),
            .host,
            "Address to listen on."
        ),
        ConfigurationKey(
            "server.port",
            \.server.port,
            default: .value("8080"),
            .integer(0...65535),
            "TCP port for WebSocket and HTTP; 0 picks any free port."
        ),
        ConfigurationKey(
            "server.threads",
            \.server.threads,
            default: .value("0"),
            .integer(0...256),
            "Event loop threads; 0 means one per two CPU cores, at least one."
        ),
        ConfigurationKey(
            "server.node_id",
            \.server.nodeID,
            default: .generated(shown: "host name + `-` + 6 random hex digits", { NodeIdentifier.generated }),
            .nodeID,
            "This node's name in the cluster (presence, heartbeats, logs); 1-128 of `A-Z a-z 0-9 . _ : -`."
        ),
        ConfigurationKey(
            "server.request_timeout",
            \.server.requestTimeout,
            default: .value("10s"),
            .duration(),
            "A connection must deliver a complete request head within this, from accept and again after each response, or it is closed (WebSockets are exempt)."
        ),
        ConfigurationKey(
            "server.max_pending_connections",
            \.server.maxPendingConnections,
            default: .value("1024"),
            .integer(1...1_000_000),
            "Connections not (yet) upgraded to WebSocket held at once; a newcomer beyond it closes the oldest idle one. At most half of (`ulimit -n` - 64)."
        ),
        ConfigurationKey(
            "server.max_pending_connections_per_address",
            \.server.maxPendingConnectionsPerAddress,
            default: .value("64"),
            .integer(1...1_000_000),
            "The same per client address (an IPv6 /64 counts as one; `server.trusted_proxies` count only in the total)."
        ),
        ConfigurationKey(
            "server.trusted_proxies",
            \.server.trustedProxies,
            default: .generated(shown: "(none)", { "" }),
            .trustedProxies,
            "IPs or CIDRs (comma-separated) whose `X-Forwarded-For` is believed: the client is its right-most entry that is not one of them. Empty: nobody's.",
            list: true
        ),
        ConfigurationKey(
            "server.demo",
            \.server.demo,
            default: .value("true"),
            .boolean,
            "Serve the demo pages (`/`, `/demo`) and the browser client (`/switchboard-client.js`); `false` answers them 404, for production."
        ),
        ConfigurationKey(
            "jwt_secret",
            \.jwtSecret,
            default: .required,
            .secret(minimumBytes: 32),
            "HS256 secret that client tokens are signed with, at least 32 bytes (`openssl rand -hex 32`). Never a flag.",
            secret: true
        ),
        ConfigurationKey(
            "database.url",
            \.database.url,
            default: .value("sqlite:switchboard.sqlite"),
            .url(
                prefixes: ["sqlite:", "postgres://", "postgresql://"],
                kind: "a database URL",
                example: "sqlite:PATH or postgres://user:pass@host/db"
            ),
            "Where call records are kept: `sqlite:PATH` or `postgres://…`.",
            secret: true
        ),
        ConfigurationKey(
            "records.max_queued",
            \.records.maxQueued,
            default: .value("50000"),
            .integer(1...10_000_000),
            "Calls whose records may wait for the database at once (a call's later snapshots merge into its entry); beyond, a new call's record is dropped, logged and counted in `switchboard_call_records_dropped_total`. 50,000: about 25 MiB (a waiting record costs about 0.5 KiB), minutes of a busy node's calls while the database is away."
        ),
        ConfigurationKey(
            "redis.url",
            \.redis.url,
            default: .none,
            ConfigurationValueParser.url(prefixes: ["redis://", "rediss://"], kind: "a Redis URL", example: "redis://host:6379")
                .optional,
            "Redis for cluster mode, `redis://[:password@]host:port[/db]`; unset means single-node mode.",
            secret: true
        ),
        ConfigurationKey(
            "redis.host",
            \.redis.host,
            default: .none,
            ConfigurationValueParser.host.optional,
            "Seed-compatible alternative to `redis.url`: used when `redis.url` is unset."
        ),
        ConfigurationKey(
            "redis.port",
            \.redis.port,
            default: .none,
            ConfigurationValueParser.integer(1...65535).optional,
            "With `redis.host` (6379 when unset)."
        ),
        ConfigurationKey(
            "redis.password",
            \.redis.password,
            default: .none,
            ConfigurationValueParser.anyText.optional,
            "With `redis.host`.",
            secret: true
        ),
        ConfigurationKey(
            "redis.db",
            \.redis.db,
            default: .none,
            ConfigurationValueParser.integer(0...65535).optional,
            "With `redis.host`: the database number."
        ),
        ConfigurationKey(
            "redis.channels.webrtc_signals",
            \.redis.channels.webrtcSignals,
            default: .value("webrtc:signals"),
            .nonEmpty,
            "Pub/sub channel for messages to users on other nodes."
        ),
        ConfigurationKey(
            "redis.heartbeat_interval",
            \.redis.heartbeatInterval,
            default: .value("2s"),
            .duration(),
            "How often a node refreshes its heartbeat; a node silent for 3 intervals is dead."
        ),
        ConfigurationKey(
            "redis.publish_window",
            \.redis.publishWindow,
            default: .value("500us"),
            .duration(allowZero: true, maximum: .milliseconds(100)),
            "The least time between two `PUBLISH`es to one other node: messages for it that come sooner wait for the window's end and go together in one, so a busy node costs Redis and the other node one `PUBLISH` per window, not one per message. The first message after a quiet window goes at once. `0` sends each as soon as the last is answered. At most 100ms."
        ),
        ConfigurationKey(
            "redis.retry_max_bytes",
            \.redis.retryMaxBytes,
            default: .value("33554432"),
            .integer((64 << 10)...(1 << 34)),
            "Bytes of messages for one other node whose delivery is open (sent and not answered, or held while its inbox is away); beyond, the oldest held give way and their senders get `unavailable`. 32 MiB: with `redis.replay_max_bytes`, 64 MiB per node; at least `websocket.max_message_bytes` + 64 KiB."
        ),
        ConfigurationKey(
            "redis.retry_max_messages",
            \.redis.retryMaxMessages,
            default: .value("16384"),
            .integer(1...10_000_000),
            "The same in messages, bounding many small ones (16,384: over 1.5 s of 10,000 messages a second to one node)."
        ),
        ConfigurationKey(
            "redis.retry_max_age",
            \.redis.retryMaxAge,
            default: .value("2s"),
            .duration(),
            "How long a message for a node whose inbox is away is held and published again (every 100 ms) before its sender gets `unavailable`; 2 s outlasts a subscriber's reconnect. Set it alike on every node: a receiver waits this + 0.5 s for a missing number."
        ),
        ConfigurationKey(
            "redis.replay_max_bytes",
            \.redis.replayMaxBytes,
            default: .value("33554432"),
            .integer(0...(1 << 34)),
            "Bytes of messages delivered to one other node kept to publish again if it lost them with its subscriber connection, the oldest dropped first; 32 MiB is what Redis' default `client-output-buffer-limit pubsub` lets such a connection lose. 0 keeps none."
        ),
        ConfigurationKey(
            "redis.replay_max_messages",
            \.redis.replayMaxMessages,
            default: .value("4096"),
            .integer(0...10_000_000),
            "The same in messages."
        ),
        ConfigurationKey(
            "redis.replay_max_age",
            \.redis.replayMaxAge,
            default: .value("10s"),
            .duration(),
            "How long a delivered message is kept for a replay; a receiver asks within about a second of resubscribing, and after this the memory goes back even when nothing more is sent."
        ),
        ConfigurationKey(
            "redis.reorder_max_bytes",
            \.redis.reorderMaxBytes,
            default: .value("16777216"),
            .integer((64 << 10)...(1 << 34)),
            "Bytes of messages from one other node that arrived ahead of a missing one and wait for it; beyond, they are delivered at once (the missing one still is, late, within its wait)."
        ),
        ConfigurationKey(
            "websocket.max_connections",
            \.websocket.maxConnections,
            default: .value("10000"),
            .integer(1...10_000_000),
            "Open WebSockets this node accepts; more are refused with HTTP 503."
        ),
        ConfigurationKey(
            "websocket.read_timeout",
            \.websocket.readTimeout,
            default: .value("60s"),
            .duration(),
            "A socket with no frame, pong or heartbeat for this long is closed."
        ),
        ConfigurationKey(
            "websocket.write_timeout",
            \.websocket.writeTimeout,
            default: .value("10s"),
            .duration(),
            "A write that cannot complete within this closes the socket."
        ),
        ConfigurationKey(
            "websocket.ping_interval",
            \.websocket.pingInterval,
            default: .value("30s"),
            .duration(),
            "How often the server pings a socket."
        ),
        ConfigurationKey(
            "websocket.pong_timeout",
            \.websocket.pongTimeout,
            default: .value("10s"),
            .duration(),
            "How long a ping may go unanswered before the socket is closed."
        ),
        ConfigurationKey(
            "websocket.max_message_bytes",
            \.websocket.maxMessageBytes,
            default: .value("1048576"),
            .integer(1024...(64 * 1024 * 1024)),
            "Largest message accepted (1 KiB-64 MiB); larger closes the socket with 1009. Bigger files go by `url`."
        ),
        ConfigurationKey(
            "websocket.max_pending_bytes",
            \.websocket.maxPendingBytes,
            default: .value("4194304"),
            .integer(64 * 1024...(1024 * 1024 * 1024)),
            "Unsent data (bytes) the node holds for a client that does not read; more closes it with 1008. Reading from it stops at 1 MiB."
        ),
        ConfigurationKey(
            "calls.ring_timeout",
            \.calls.ringTimeout,
            default: .value("60s"),
            .duration(),
            "How long an invite rings before both parties get `call-hangup` with reason `timeout`."
        ),
        ConfigurationKey(
            "calls.reconnect_grace",
            \.calls.reconnectGrace,
            default: .value("10s"),
            .duration(allowZero: true),
            "How long a party's dropped socket may stay away before the call ends (`peer-disconnected`); 0 ends it at once."
        ),
        ConfigurationKey(
            "ice.stun_urls",
            \.ice.stunURLs,
            default: .generated(shown: "(none)", { "" }),
            .urlList(schemes: ["stun", "stuns"]),
            "STUN URLs (comma-separated) for the `ice-servers` notice, e.g. `stun:turn.example.com:3478`.",
            list: true
        ),
        ConfigurationKey(
            "turn.urls",
            \.turn.urls,
            default: .generated(shown: "(none)", { "" }),
            .urlList(schemes: ["turn", "turns"]),
            "TURN URLs (comma-separated) for the `ice-servers` notice, e.g. `turn:turn.example.com:3478?transport=udp,turns:turn.example.com:5349?transport=tcp`.",
            list: true
        ),
        ConfigurationKey(
            "turn.secret",
            \.turn.secret,
            default: .none,
            ConfigurationValueParser.secret(minimumBytes: 20).optional,
            "coturn's `static-auth-secret` (at least 20 bytes): TURN credentials are issued in coturn's REST scheme. Unset: the TURN entry carries none. Never a flag.",
            secret: true
        ),
        ConfigurationKey(
            "turn.ttl",
            \.turn.ttl,
            default: .value("24h"),
            .duration(),
            "How long issued TURN credentials are valid. coturn checks them again at every allocation refresh, so they must outlast the longest call."
        ),
        ConfigurationKey(
            "limits.messages_per_second",
            \.limits.messagesPerSecond,
            default: .value("50"),
            .integer(1...1_000_000),
            "Messages (and pings, heartbeats) one user may send per second, sustained; reconnecting does not refill the budget."
        ),
        ConfigurationKey(
            "limits.messages_burst",
            \.limits.messagesBurst,
            default: .value("400"),
            .integer(1...1_000_000),
            "Messages one user may send back to back before the sustained rate applies: a call's offer, answer and 300 ICE candidates pass."
        ),
        ConfigurationKey(
            "limits.invites_per_minute",
            \.limits.invitesPerMinute,
            default: .value("10"),
            .integer(1...1_000_000),
            "`call-invite`s one user may send per minute."
        ),
        ConfigurationKey(
            "limits.upgrades_per_second",
            \.limits.upgradesPerSecond,
            default: .value("10"),
            .integer(1...1_000_000),
            "WebSocket upgrades per second per user, and ten times as many per client address (NATs share one); more are refused with HTTP 429."
        ),
        ConfigurationKey(
            "hooks.invite_url",
            \.hooks.inviteURL,
            default: .none,
            ConfigurationValueParser.url(
                prefixes: ["http://", "https://"],
                kind: "an HTTP URL",
                example: "https://backend.example.com/switchboard/permission"
            ).optional,
            "The app's backend is asked here (a signed POST) before each invite rings; unset: every invite may ring."
        ),
        ConfigurationKey(
            "hooks.secret",
            \.hooks.secret,
            default: .none,
            ConfigurationValueParser.secret(minimumBytes: 32).optional,
            "The key (at least 32 bytes) that signs every request to the backend (`X-Switchboard-Signature`); required with a hook URL. Never a flag.",
            secret: true
        ),
        ConfigurationKey(
            "hooks.invite_timeout",
            \.hooks.inviteTimeout,
            default: .value("2s"),
            .duration(),
            "How long the backend may take to answer an invite, connecting included; later counts as an error."
        ),
        ConfigurationKey(
            "hooks.invite_on_error",
            \.hooks.inviteOnErrorAllows,
            default: .value("deny"),
            .either(false: "deny", true: "allow"),
            "`deny` or `allow`: what an invite gets when the backend answers neither (another status, a bad body, no answer in time, too many questions open)."
        ),
        ConfigurationKey(
            "hooks.invite_cache_ttl",
            \.hooks.inviteCacheTTL,
            default: .value("0s"),
            .duration(allowZero: true),
            "How long the backend's allow or deny is reused per (caller, callee), at most 10,000 pairs; errors never are. 0: ask every time."
        ),
        ConfigurationKey(
            "hooks.invite_max_in_flight",
            \.hooks.inviteMaxInFlight,
            default: .value("256"),
            .integer(1...100_000),
            "Questions to the backend open at once on this node; an invite beyond them is an error (`hooks.invite_on_error`)."
        ),
        ConfigurationKey(
            "hooks.events_url",
            \.hooks.eventsURL,
            default: .none,
            ConfigurationValueParser.url(
                prefixes: ["http://", "https://"],
                kind: "an HTTP URL",
                example: "https://backend.example.com/switchboard/events"
            ).optional,
            "Every call event this node logs is posted here (signed, at least once, in order per call); unset: nowhere."
        ),
        ConfigurationKey(
            "hooks.events_retry",
            \.hooks.eventsRetry,
            default: .value("60s"),
            .duration(),
            "How long a call event's delivery is retried (backoff from 1 s, doubling) before it is given up, logged and counted in `switchboard_hook_events_given_up_total`."
        ),
        ConfigurationKey(
            "hooks.events_max_queued",
            \.hooks.eventsMaxQueued,
            default: .value("10000"),
            .integer(1...10_000_000),
            "Call events waiting for delivery at once; beyond, a new event is given up (logged and counted)."
        ),
        ConfigurationKey(
            "hooks.events_max_queued_bytes",
            \.hooks.eventsMaxQueuedBytes,
            default: .value("8388608"),
            .integer(4096...(1 << 34)),
            "The same in bytes of event JSON (8 MiB: about 25,000 events)."
        ),
        ConfigurationKey(
            "blocks.max_per_user",
            \.blocks.maxPerUser,
            default: .value("1000"),
            .integer(1...1_000_000),
            "Users one user may block; `PUT /api/blocks/{user}` beyond answers 409."
        ),
        ConfigurationKey(
            "metrics.port",
            \.metrics.port,
            default: .none,
            ConfigurationValueParser.integer(1...65535).optional,
            "Serve `/metrics` on its own listener on this port (same host) and not on the main port; unset: on the main port."
        ),
        ConfigurationKey(
            "log.level",
            \.log.level,
            default: .value("info"),
            .logLevel,
            "Lowest log level written: trace, debug, info, notice, warning, error, critical."
        ),
        ConfigurationKey(
            "testing.echo_route",
            \.testing.echoRoute,
            default: .value("false"),
            .boolean,
            "Also serve a WebSocket echo at `/autobahn` (conformance tests only)."
        ),
    ]

    /// The dotted path of every configuration key, in documentation order.
    package static var keyPaths: [String] { keys.map(\.path) }

    /// The environment variable for the key at `keyPath` (`SWITCHBOARD_` + path in capitals, `.` as `_`).
    package static func environmentVariable(forKeyPath keyPath: String) -> String? {
        key(forPath: keyPath)?.environmentVariable
    }

    /// The configuration reference as a Markdown table: key | env var | default | meaning.
    package static var referenceMarkdown: String {
        var lines = ["| key | env var | default | meaning |", "|---|---|---|---|"]
        for key in keys {
            let defaultText: String
            switch key.defaultValue {
            case .value(let text): defaultText = "`\(text)`"
            case .generated(let shown, _): defaultText = shown
            case .none: defaultText = "(unset)"
            case .required: defaultText = "**required**"
            }
            let cells = ["`\(key.path)`", "`\(key.environmentVariable)`", defaultText, key.meaning]
            lines.append("| " + cells.map { $0.replacing("|", with: "\\|") }.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
