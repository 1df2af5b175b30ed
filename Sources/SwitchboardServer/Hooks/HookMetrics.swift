import CoreMetrics

/// What the hooks count (`/metrics`): the backend's answers to invites, and the call events posted.
struct HookMetrics: Sendable {
    /// `switchboard_hook_invite_answers_total{answer}`: allow, deny, error, and `cached` (answered by
    /// the cache, asked nobody).
    let allowed, denied, errors, cached: Counter
    /// `switchboard_hook_events_sent_total`: events the backend took (2xx).
    let eventsSent: Counter
    /// `switchboard_hook_events_retried_total`: deliveries tried again after a failure.
    let eventsRetried: Counter
    /// `switchboard_hook_events_given_up_total`: events dropped (retried for `hooks.events_retry`, or
    /// no room in the queue).
    let eventsGivenUp: Counter

    init(factory: any MetricsFactory) {
        func answer(_ name: String) -> Counter {
            Counter(label: "switchboard_hook_invite_answers_total", dimensions: [("answer", name)], factory: factory)
        }
        allowed = answer("allow")
        denied = answer("deny")
        errors = answer("error")
        cached = answer("cached")
        eventsSent = Counter(label: "switchboard_hook_events_sent_total", dimensions: [], factory: factory)
        eventsRetried = Counter(label: "switchboard_hook_events_retried_total", dimensions: [], factory: factory)
        eventsGivenUp = Counter(label: "switchboard_hook_events_given_up_total", dimensions: [], factory: factory)
    }
}
