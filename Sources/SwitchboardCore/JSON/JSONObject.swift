/// A JSON object: string keys mapped to values, in insertion order.
///
/// Setting an existing key replaces its value in place; setting a new key appends it; setting
/// `nil` removes it. When built from pairs (or parsed) with a duplicate key, the last value wins
/// and the key keeps its first position.
///
/// Lookups scan linearly, which is the fastest choice for the handful of keys a signal carries.
/// Keys compare with `String` equality.
package struct JSONObject: Sendable, Equatable {
    /// One member.
    package typealias Element = (key: String, value: JSONValue)

    @usableFromInline
    internal var storage: [Element]

    /// An empty object.
    package init() {
        storage = []
    }

    /// An object with `pairs` in order; for a duplicate key the last value wins at the first position.
    package init(_ pairs: some Sequence<(String, JSONValue)>) {
        var builder = JSONObjectBuilder()
        for (key, value) in pairs {
            builder.append(key: key, value: value)
        }
        self = builder.build()
    }

    /// Wraps members already known to have distinct keys.
    internal init(uniqueMembers: [Element]) {
        storage = uniqueMembers
    }

    /// The keys, in order.
    package var keys: [String] {
        storage.map(\.key)
    }

    /// The values, in key order.
    package var values: [JSONValue] {
        storage.map(\.value)
    }

    /// The value for `key`; assigning `nil` removes the key.
    package subscript(key: String) -> JSONValue? {
        get {
            for member in storage where member.key == key {
                return member.value
            }
            return nil
        }
        set {
            if let newValue {
                updateValue(newValue, forKey: key)
            } else {
                removeValue(forKey: key)
            }
        }
    }

    /// Sets `value` for `key` (in place when present, appended otherwise); returns the old value.
    @discardableResult
    package mutating func updateValue(_ value: JSONValue, forKey key: String) -> JSONValue? {
        if let index = index(forKey: key) {
            let old = storage[index].value
            storage[index].value = value
            return old
        }
        storage.append((key: key, value: value))
        return nil
    }

    /// Removes `key`; returns its value when it was present.
    @discardableResult
    package mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let index = index(forKey: key) else { return nil }
        return storage.remove(at: index).value
    }

    /// The position of `key`, if present.
    package func index(forKey key: String) -> Int? {
        storage.firstIndex { $0.key == key }
    }

    package static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.storage.count == rhs.storage.count else { return false }
        for (left, right) in zip(lhs.storage, rhs.storage) {
            guard left.key == right.key, left.value == right.value else { return false }
        }
        return true
    }
}

extension JSONObject: RandomAccessCollection {
    /// The first member's position (0).
    package var startIndex: Int { storage.startIndex }
    /// One past the last member's position.
    package var endIndex: Int { storage.endIndex }
    /// The member at `position`.
    package subscript(position: Int) -> Element { storage[position] }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// An object with the literal's members, in the literal's order.
    package init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }
}

extension JSONObject: CustomStringConvertible {
    /// The compact JSON text.
    package var description: String { JSONValue.object(self).serialized() }
}

/// Accumulates members, applying the duplicate-key rule without going quadratic on big objects.
internal struct JSONObjectBuilder {
    /// Above this many members, duplicates are found through a hash index rather than a scan.
    private static let indexThreshold = 12

    private var members: [JSONObject.Element] = []
    private var index: [String: Int]? = nil

    mutating func append(key: String, value: JSONValue) {
        if let existing = position(of: key) {
            members[existing].value = value
            return
        }
        // A signal's objects have a handful of members: one allocation rather than three growths.
        if members.isEmpty { members.reserveCapacity(4) }
        members.append((key: key, value: value))
        if index != nil {
            index![key] = members.count - 1
        } else if members.count > Self.indexThreshold {
            var built = [String: Int](minimumCapacity: members.count * 2)
            for (offset, member) in members.enumerated() {
                built[member.key] = offset
            }
            index = built
        }
    }

    private func position(of key: String) -> Int? {
        if let index { return index[key] }
        return members.firstIndex { $0.key == key }
    }

    func build() -> JSONObject {
        JSONObject(uniqueMembers: members)
    }
}
