/// A record sink that counts each record (``SignalingMetrics/record(_:)``) before passing it on, so an
/// engine's many `enqueue` sites need no metrics code of their own.
struct MeteredCallRecordSink: CallRecordSink {
    let base: any CallRecordSink
    let metrics: SignalingMetrics

    func enqueue(_ record: CallRecord) {
        metrics.record(record)
        base.enqueue(record)
    }
}
