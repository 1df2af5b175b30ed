import Logging
import RedisWire
import ServiceLifecycle
import SwitchboardBasics
import SwitchboardCore

/// This node's membership of the cluster, as a `Service`: after every (re)connect to Redis it reaps what
/// an earlier run of the node left, registers its users again; every heartbeat interval it records its
/// heartbeat in `webrtc:nodes` and reaps nodes silent for three intervals; after the subscriber
/// reconnects, it asks the other nodes to publish again what the old connection may have lost. On graceful shutdown it takes
/// its users out of presence and marks itself dead, so that the others' reapers end the calls of users
/// who do not come back.
package final class ClusterMembership: Service {
    private let engine: Switchboard
    private let scripts: ClusterScripts
    private let delivery: ClusterDelivery
    private let client: RedisClient
    private let subscriber: RedisSubscriber
    private let heartbeatInterval: Duration
    private let logger: Logger

    init(
        engine: Switchboard,
        scripts: ClusterScripts,
        delivery: ClusterDelivery,
        client: RedisClient,
        subscriber: RedisSubscriber,
        heartbeatInterval: Duration,
        logger: Logger
    ) {
        self.engine = engine
        self.scripts = scripts
        self.delivery = delivery
        self.client = client
        self.subscriber = subscriber
        self.heartbeatInterval = heartbeatInterval
        self.logger = logger
    }

    package func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    var isFirst = true
                    for await state in self.client.stateChanges() where state == .connected {
                        await self.joined(isFirst: isFirst)
                        isFirst = false
                    }
                }
                group.addTask {
                    // After a resubscribe, ask every node for what may have been lost in the old connection.
                    var isFirst = true
                    for await state in self.subscriber.stateChanges() where state == .connected {
                        if !isFirst { self.delivery.inboxReconnected() }
                        isFirst = false
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: self.heartbeatInterval)
                        await self.beat()
                    }
                }
            }
        }
        await leave()
    }

    /// Runs after each connect: scripts cached, leftovers reaped (first time), users registered again.
    private func joined(isFirst: Bool) async {
        _ = await client.execute(batch: ClusterScripts.loadCommands)
        if isFirst, let orphans = try? await scripts.reset(now: engine.clock.nowMilliseconds()).get() {
            engine.orphaned(orphans)
        }
        engine.restoreAfterReconnect()
        await beat()
    }

    private func beat() async {
        guard client.isConnected else { return }
        let now = engine.clock.nowMilliseconds()
        let silence = heartbeatInterval * 3
        let deadline = now - silence.wholeMilliseconds
        do {
            let beat = try await scripts.beat(now: now, deadline: deadline).get()
            if beat.wasMissing {
                // Reaped while it stalled, or Redis lost it: register its users again (harmless when
                // `joined` just did).
                engine.restoreAfterReconnect()
            }
            engine.orphaned(beat.orphans)
        } catch {
            logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
        }
    }

    private func leave() async {
        do {
            _ = try await scripts.leave(now: engine.clock.nowMilliseconds()).get()
            logger.info("left the cluster", metadata: ["node_id": "\(engine.nodeId)"])
        } catch {
            logger.warning("could not leave the cluster; the others will reap this node", metadata: ["error": "\(error)"])
        }
    }
}
