import NIOCore
import SwitchboardCore

/// Runs the switchboard's timers (ring timeout, reconnect grace) on an event loop.
struct EventLoopScheduler: TimerScheduler {
    let eventLoop: any EventLoop

    func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> any ScheduledTimer {
        ScheduledTask(task: eventLoop.scheduleTask(in: TimeAmount(delay), action))
    }

    private struct ScheduledTask: ScheduledTimer {
        let task: Scheduled<Void>
        func cancel() { task.cancel() }
    }
}
