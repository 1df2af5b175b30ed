import FuzzSupport

/// Parses what the server wrote (sent or not), frame by frame, as a client would.
struct OutputChecker {
    private var bytes: [UInt8] = []
    private var closeSeen = false

    /// Takes what the node wrote since the last call and checks each whole frame in it.
    mutating func take(_ written: [UInt8]) {
        bytes += written
        while let length = frameLength() {
            checkFrame(bytes[0..<length])
            bytes.removeFirst(length)
        }
    }

    /// At the end, no frame is left half-written.
    func finish() {
        check(bytes.isEmpty, "\(bytes.count) bytes of a partial frame written")
    }

    /// The length of the whole frame at the front, `nil` until it is all there.
    private func frameLength() -> Int? {
        guard bytes.count >= 2 else { return nil }
        var header = 2
        var length = Int(bytes[1] & 0x7F)
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            header = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
            header = 10
        }
        if bytes[1] & 0x80 != 0 { header += 4 }
        return bytes.count >= header + length ? header + length : nil
    }

    private mutating func checkFrame(_ frame: ArraySlice<UInt8>) {
        let first = frame[frame.startIndex]
        let second = frame[frame.startIndex + 1]
        check(!closeSeen, "a frame (opcode \(first & 0x0F)) after the close frame")
        check(first & 0x80 != 0, "a frame without FIN")
        check(first & 0x70 == 0, "reserved bits set")
        check(second & 0x80 == 0, "a masked server frame")
        let header = (second & 0x7F) == 126 ? 4 : (second & 0x7F) == 127 ? 10 : 2
        let payload = frame.dropFirst(header)
        switch first & 0x0F {
        case 0x1, 0x2:
            break
        case 0x9, 0xA:
            check(payload.count <= 125, "a control frame of \(payload.count) bytes")
        case 0x8:
            closeSeen = true
            check(payload.count <= 125, "a close frame of \(payload.count) bytes")
            check(payload.count != 1, "a close frame of 1 byte")
            if payload.count >= 2 {
                let code = UInt16(payload[payload.startIndex]) << 8 | UInt16(payload[payload.startIndex + 1])
                check(
                    (1000...1003).contains(code) || (1007...1014).contains(code) || (3000...4999).contains(code),
                    "close code \(code) sent"
                )
                check(String(validating: payload.dropFirst(2), as: UTF8.self) != nil, "a close reason that is not UTF-8")
            }
        default:
            check(false, "opcode \(first & 0x0F) sent")
        }
    }
}
