import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import SwitchboardServer

/// `switchboard serve`: runs one node (PROTOCOL.md §7).
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a Switchboard node.")

    @Option(help: "YAML configuration file.")
    var config: String?

    @Option(help: "Address to listen on (server.host).")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free one (server.port).")
    var port: Int?

    @Option(name: .customLong("node-id"), help: "This node's id in presence (server.node_id).")
    var nodeId: String?

    @Option(help: "Redis URL redis://[:password@]host:port/db; absent: single-node mode (redis.url).")
    var redis: String?

    @Option(help: "Call record database: sqlite:PATH or postgres://… (database.url).")
    var database: String?

    func run() async throws {
        var overrides: [String: String] = [:]
        overrides["server.host"] = host
        overrides["server.port"] = port.map(String.init)
        overrides["server.node_id"] = nodeId
        overrides["redis.url"] = redis
        overrides["database.url"] = database
        let configuration: SwitchboardConfiguration
        do {
            configuration = try SwitchboardConfiguration.load(
                file: config,
                environment: ProcessInfo.processInfo.environment,
                overrides: overrides
            )
        } catch {
            throw ValidationError("invalid configuration: \(error)")
        }
        returnLargeBuffersToTheSystem()
        bootstrapLogging(level: configuration.log.level)
        let metrics = bootstrapMetrics()
        let logger = Logger(label: "switchboard")
        let app = try await buildApplication(configuration, logger: logger, metrics: metrics)
        // SIGTERM/SIGINT: stop accepting, close sockets with 1001, leave the cluster; bounded.
        var group = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(10)
        group.maximumCancellationDuration = .seconds(2)
        try await ServiceGroup(configuration: group).run()
    }
}
