import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import SwitchboardCore

/// Signed POSTs to the app's backend (PROTOCOL.md §10), on the server's event loops. Nothing waits on a
/// thread: an answer completes a future, by its deadline at the latest.
final class HookClient: Sendable {
    /// An answer's status and the start of its body (at most ``maxBodyBytes``).
    struct Answer: Sendable {
        var status: Int
        var body: ByteBuffer?
    }

    /// Bodies longer than this are an error (an answer is `{"allow":true}`).
    static let maxBodyBytes = 64 << 10

    private let http: HTTPClient
    private let signer: HookSigner
    private let clock: SwitchboardClock

    /// A client on `group`, opening at most `maxConnections` connections per backend host.
    init(group: any EventLoopGroup, secret: String, maxConnections: Int, clock: SwitchboardClock = .system) {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60),
            concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnections
        )
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
        signer = HookSigner(secret: secret)
        self.clock = clock
    }

    /// POSTs `body` (JSON) to `url`, signed, and answers by `deadline` (connecting included).
    func post(_ url: String, body: [UInt8], deadline: NIODeadline) -> EventLoopFuture<Answer> {
        let request: HTTPClient.Request
        do {
            let timestamp = clock.nowMilliseconds() / 1000
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "X-Switchboard-Timestamp", value: "\(timestamp)")
            headers.add(name: "X-Switchboard-Signature", value: signer.signature(timestamp: timestamp, body: body))
            request = try HTTPClient.Request(url: url, method: .POST, headers: headers, body: .bytes(body))
        } catch {
            return http.eventLoopGroup.any().makeFailedFuture(error)
        }
        let accumulator = ResponseAccumulator(request: request, maxBodySize: Self.maxBodyBytes)
        return http.execute(request: request, delegate: accumulator, deadline: deadline).futureResult.map {
            Answer(status: Int($0.status.code), body: $0.body)
        }
    }

    /// Closes the client's connections (at shutdown, once nothing posts any more).
    func shutdown() async {
        try? await http.shutdown()
    }
}
