import NIOCore

extension EventLoopFuture {
    /// This future, or a failure with ``BenchError/setup(_:)`` and `why()` once `timeout` has passed (a server
    /// that accepts TCP but never answers, e.g. out of file descriptors, would otherwise stall a run forever).
    /// Call on the future's event loop.
    func failing(after timeout: TimeAmount, _ why: @escaping () -> String) -> EventLoopFuture<Value> {
        let promise = eventLoop.makePromise(of: Value.self)
        var settled = false
        let timer = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            guard !settled else { return }
            settled = true
            promise.fail(BenchError.setup(why()))
        }
        assumeIsolated().whenComplete { result in
            guard !settled else { return }
            settled = true
            timer.cancel()
            promise.completeWith(result)
        }
        return promise.futureResult
    }
}
