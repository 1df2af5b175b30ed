import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// TCP ports on 127.0.0.1 for the servers tests start (redis-server, PostgreSQL).
package enum LoopbackPort {
    /// Ports already given out in this process. The kernel hands a port closed a moment ago to the next
    /// `bind` to port 0 again, so two tests starting servers at once could get the same one: the second
    /// server could not listen, and its test would talk to the first one's.
    private static let given = Mutex<Set<Int>>([])

    /// A port that nothing listens on right now and that no other caller in this process was given.
    package static func free() throws(PortError) -> Int {
        for _ in 0..<100 {
            let port = try unused()
            if given.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw PortError(description: "no free port that no other test server was given")
    }

    /// Whether something accepts TCP connections on `port` now.
    package static func acceptsConnections(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = address(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return connected == 0
    }

    /// A port that nothing listens on right now (the kernel's choice for a `bind` to port 0).
    private static func unused() throws(PortError) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PortError(description: "socket() failed") }
        defer { close(fd) }
        var address = address(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw PortError(description: "bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw PortError(description: "getsockname() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func address(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    package struct PortError: Error, CustomStringConvertible {
        package var description: String
    }
}
