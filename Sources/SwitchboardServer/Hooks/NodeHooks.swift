import CoreMetrics
import Logging
import NIOCore
import ServiceLifecycle
import SwitchboardCore

/// The app's backend's hooks as configured (`hooks.*`, PROTOCOL.md §10): the engine's invite permission,
/// the call event webhook, and the service that closes their client at shutdown.
struct NodeHooks {
    var permission: (any InvitePermission)?
    var webhook: EventWebhook?
    var services: [any Service]

    /// Hooks whose requests run on `group`; none without a hook URL.
    init(_ configuration: SwitchboardConfiguration.Hooks, group: any EventLoopGroup, metrics: any MetricsFactory, logger: Logger)
    {
        guard let secret = configuration.secret, configuration.inviteURL != nil || configuration.eventsURL != nil else {
            (permission, webhook, services) = (nil, nil, [])
            return
        }
        let counters = HookMetrics(factory: metrics)
        let client = HookClient(
            group: group,
            secret: secret,
            maxConnections: configuration.inviteMaxInFlight + EventWebhook.maxInFlight
        )
        permission = configuration.inviteURL.map {
            InvitePermissionHook(client: client, configuration: configuration, url: $0, metrics: counters, logger: logger)
        }
        webhook = configuration.eventsURL.map {
            EventWebhook(
                client: client,
                url: $0,
                configuration: configuration,
                eventLoop: group.next(),
                metrics: counters,
                logger: logger
            )
        }
        services = [HooksService(client: client, webhook: webhook)]
    }
}

/// Waits for shutdown, lets queued call events go (``EventWebhook/drain()``), then closes the client.
private struct HooksService: Service {
    let client: HookClient
    let webhook: EventWebhook?

    func run() async throws {
        try? await gracefulShutdown()
        await webhook?.drain()
        await client.shutdown()
    }
}
