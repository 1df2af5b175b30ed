import Foundation
import Yams

/// Reads the YAML configuration file into `(key path, text)` entries, rejecting unknown keys.
enum ConfigurationFile {
    /// One scalar value found in the file.
    struct Entry: Sendable, Equatable {
        /// The dotted key path.
        let path: String
        /// The scalar as written (YAML quoting removed).
        let value: String
        /// `FILE:LINE`.
        let source: String
    }

    /// The entries of the file at `path`, in file order.
    static func entries(path: String) throws(ConfigurationError) -> [Entry] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(key: nil, problem: "cannot read config file \(path): \(error.localizedDescription)")
        }
        return try entries(yaml: text, file: path)
    }

    /// The entries of `yaml`, naming `file` in errors. `null` values (`~`, `null`, nothing) are skipped.
    static func entries(yaml: String, file: String) throws(ConfigurationError) -> [Entry] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigurationError(key: nil, problem: "config file \(file) is not valid YAML: \(error)")
        }
        guard let root, !isNull(root) else { return [] }
        guard case .mapping(let mapping) = root else {
            throw ConfigurationError(key: nil, problem: "config file \(file) must be a mapping of keys")
        }
        var entries: [Entry] = []
        try walk(mapping, prefix: "", file: file, into: &entries)
        return entries
    }

    private static func walk(
        _ mapping: Node.Mapping,
        prefix: String,
        file: String,
        into entries: inout [Entry]
    ) throws(ConfigurationError) {
        for (keyNode, valueNode) in mapping {
            let source = location(of: keyNode, in: file)
            guard case .scalar(let keyScalar) = keyNode else {
                throw ConfigurationError(key: prefix.isEmpty ? nil : prefix, problem: "keys must be plain names", source: source)
            }
            let path = prefix.isEmpty ? keyScalar.string : prefix + "." + keyScalar.string
            if isNull(valueNode) {
                guard isKnown(path) else { throw unknownKey(path, source: source) }
                continue
            }
            if let key = SwitchboardConfiguration.key(forPath: path) {
                if key.isList, case .sequence(let sequence) = valueNode {
                    // A YAML list is the same as the comma-separated text the environment variable takes.
                    var items: [String] = []
                    for item in sequence {
                        guard case .scalar(let scalar) = item else {
                            throw ConfigurationError(key: path, problem: "expects a list of single values", source: source)
                        }
                        items.append(scalar.string)
                    }
                    entries.append(
                        Entry(path: path, value: items.joined(separator: ","), source: location(of: valueNode, in: file))
                    )
                    continue
                }
                guard case .scalar(let scalar) = valueNode else {
                    throw ConfigurationError(key: path, problem: "expects a single value, not a list or mapping", source: source)
                }
                entries.append(Entry(path: path, value: scalar.string, source: location(of: valueNode, in: file)))
            } else if isSection(path) {
                guard case .mapping(let nested) = valueNode else {
                    throw ConfigurationError(key: path, problem: "is a section; expected a mapping of keys", source: source)
                }
                try walk(nested, prefix: path, file: file, into: &entries)
            } else {
                throw unknownKey(path, source: source)
            }
        }
    }

    private static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    private static func isSection(_ path: String) -> Bool {
        SwitchboardConfiguration.keys.contains { $0.path.hasPrefix(path + ".") }
    }

    private static func isKnown(_ path: String) -> Bool {
        SwitchboardConfiguration.key(forPath: path) != nil || isSection(path)
    }

    private static func location(of node: Node, in file: String) -> String {
        guard let mark = node.mark else { return file }
        return "\(file):\(mark.line)"
    }

    private static func unknownKey(_ path: String, source: String) -> ConfigurationError {
        var problem = "unknown key"
        if let suggestion = closestKey(to: path) { problem += " (did you mean \(suggestion)?)" }
        return ConfigurationError(key: path, problem: problem, source: source)
    }

    /// The known key path within a small edit distance of `path`, if any.
    private static func closestKey(to path: String) -> String? {
        let candidates = SwitchboardConfiguration.keys.map(\.path)
        let scored = candidates.map { ($0, editDistance(Array(path.utf8), Array($0.utf8))) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, path.utf8.count / 4) else { return nil }
        return best.0
    }

    private static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
