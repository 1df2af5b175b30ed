import Synchronization

/// One shared copy of strings that many connections repeat (a user agent), so that each keeps a reference
/// rather than bytes of its own.
///
/// Bounded: it holds at most `capacity` strings of at most `maxLength` bytes each, and starts over when
/// full (copies handed out stay shared by whoever holds them). Strings short enough to be stored inline
/// (15 bytes) cost nothing to keep and are returned as they are, as are longer ones than `maxLength`.
package final class StringInterner: Sendable {
    private let table = Mutex<Set<String>>([])
    private let capacity: Int
    private let maxLength: Int

    package init(capacity: Int = 1024, maxLength: Int = 256) {
        self.capacity = capacity
        self.maxLength = maxLength
    }

    /// `string`, or an equal string handed out before.
    package func intern(_ string: String) -> String {
        let length = string.utf8.count
        guard length > 15, length <= maxLength else { return string }
        return table.withLock { table in
            if let index = table.firstIndex(of: string) { return table[index] }
            if table.count >= capacity { table.removeAll(keepingCapacity: true) }
            table.insert(string)
            return string
        }
    }

    /// How many strings it holds now.
    package var count: Int { table.withLock { $0.count } }
}
