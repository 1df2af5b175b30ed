/// Asks the app's backend whether a caller may ring a callee (PROTOCOL.md §10, `hooks.invite_url`).
///
/// The answer is final: the adapter applies its timeout, its cache and `hooks.invite_on_error` itself, so
/// that the engine sees allow or deny only. It comes exactly once, later, on any thread, and never blocks
/// the caller's thread while it waits.
package protocol InvitePermission: Sendable {
    func ask(_ question: InviteQuestion, then done: @escaping @Sendable (Bool) -> Void)
}

/// One invite the backend is asked about.
package struct InviteQuestion: Sendable, Equatable {
    package var caller: String
    package var callee: String
    package var callId: String
    package var callType: CallType

    package init(caller: String, callee: String, callId: String, callType: CallType) {
        self.caller = caller
        self.callee = callee
        self.callId = callId
        self.callType = callType
    }
}
