import NIOCore
import Testing

@testable import RedisWire

@Suite("The connection state machine")
struct RedisConnectionStateMachineTests {
    typealias Machine = RedisConnectionStateMachine<Int>
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func repliesCompleteCommandsInOrder() {
        var machine = Machine()
        guard case .write(armTimerAt: nil) = machine.enqueue(1, deadline: nil) else {
            Issue.record("write")
            return
        }
        guard case .write = machine.enqueue(2, deadline: nil) else {
            Issue.record("write")
            return
        }
        guard case .succeed(1, .simpleString("OK")) = machine.receive(.simpleString("OK")) else {
            Issue.record("1")
            return
        }
        guard case .fail(2, let error) = machine.receive(.error("ERR nope")) else {
            Issue.record("2")
            return
        }
        #expect(error == .server("ERR nope"))
        #expect(machine.pendingCount == 0)
    }

    @Test func multiReplyCommandCompletesWithItsLastReply() {
        var machine = Machine()
        _ = machine.enqueue(1, replies: 2, deadline: nil)
        _ = machine.enqueue(2, deadline: nil)
        guard case .none = machine.receive(.integer(1)) else {
            Issue.record("first of two")
            return
        }
        guard case .succeed(1, .integer(2)) = machine.receive(.integer(2)) else {
            Issue.record("second")
            return
        }
        guard case .succeed(2, .integer(3)) = machine.receive(.integer(3)) else {
            Issue.record("next")
            return
        }
    }

    @Test func unexpectedReplyClosesTheConnection() {
        var machine = Machine()
        guard case .close(let failing, let error) = machine.receive(.integer(1)) else {
            Issue.record("close")
            return
        }
        #expect(failing.isEmpty)
        #expect(error.code == .protocolError)
        #expect(!machine.isActive)
    }

    @Test func timerArmsOnceAndTimesOutTheOldestCommand() {
        var machine = Machine()
        guard case .write(armTimerAt: let first?) = machine.enqueue(1, deadline: start + .milliseconds(200)) else {
            Issue.record("arm")
            return
        }
        #expect(first == start + .milliseconds(200))
        // The timer is already armed: no second timer for the next command.
        guard case .write(armTimerAt: nil) = machine.enqueue(2, deadline: start + .milliseconds(300)) else {
            Issue.record("no second timer")
            return
        }
        _ = machine.receive(.simpleString("OK"))
        // Fired at the first deadline: command 1 is done, so re-arm for command 2.
        guard case .arm(let next) = machine.timerFired(now: start + .milliseconds(200)) else {
            Issue.record("re-arm")
            return
        }
        #expect(next == start + .milliseconds(300))
        guard case .close(let failing, let error) = machine.timerFired(now: start + .milliseconds(300)) else {
            Issue.record("timeout")
            return
        }
        #expect(failing == [2])
        #expect(error.code == .timeout)
        guard case .fail(3, let closed) = machine.enqueue(3, deadline: nil) else {
            Issue.record("closed")
            return
        }
        #expect(closed.code == .connectionClosed)
    }

    @Test func timerWithNothingPendingDoesNothingAndRearmsOnTheNextCommand() {
        var machine = Machine()
        _ = machine.enqueue(1, deadline: start)
        _ = machine.receive(.integer(1))
        guard case .none = machine.timerFired(now: start) else {
            Issue.record("none")
            return
        }
        guard case .write(armTimerAt: let at?) = machine.enqueue(2, deadline: start + .seconds(1)) else {
            Issue.record("arm again")
            return
        }
        #expect(at == start + .seconds(1))
    }

    @Test func closingFailsEveryPendingCommandOnce() {
        var machine = Machine()
        _ = machine.enqueue(1, deadline: nil)
        _ = machine.enqueue(2, deadline: nil)
        #expect(machine.channelClosed() == [1, 2])
        #expect(machine.channelClosed() == [])
        #expect(machine.fail(RedisError(code: .protocolError, message: "x")) == [])
        guard case .none = machine.receive(.integer(1)) else {
            Issue.record("ignored")
            return
        }
    }
}
