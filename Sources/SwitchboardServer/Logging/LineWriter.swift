import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Writes whole lines to standard output on a thread of its own, so no event loop ever waits on a slow
/// reader of the log. Lines keep the order they were given in.
final class LineWriter: Sendable {
    /// The process-wide writer for standard output.
    static let standardOutput = LineWriter(fileDescriptor: 1)

    private let fileDescriptor: Int32
    private let pool: NIOThreadPool

    private init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
        self.pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    /// Queues `line` (without its newline).
    func write(_ line: String) {
        let fileDescriptor = self.fileDescriptor
        pool.submit { _ in
            var bytes = Array(line.utf8)
            bytes.append(UInt8(ascii: "\n"))
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { Glibc.write(fileDescriptor, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }
}
