import SwitchboardBasics

/// Output: one JSON object (wsload's field names, in wsload's order, then this tool's extras) or a table.
struct JSONLine {
    private var fields: [String] = []

    mutating func add(_ key: String, raw: String) {
        fields.append("\(Self.quote(key)):\(raw)")
    }

    mutating func add(_ key: String, _ value: String) { add(key, raw: Self.quote(value)) }
    mutating func add(_ key: String, _ value: Int) { add(key, raw: String(value)) }
    mutating func add(_ key: String, _ value: UInt64?) { add(key, raw: value.map { String($0) } ?? "null") }
    mutating func add(_ key: String, _ value: Double?, digits: Int) {
        add(key, raw: value.map { Format.fixed($0, digits) } ?? "null")
    }
    mutating func add(_ key: String, _ values: [Int?]) {
        add(key, raw: "[" + values.map { $0.map { String($0) } ?? "null" }.joined(separator: ",") + "]")
    }
    mutating func add(_ key: String, _ counts: [String: Int]) {
        let body = counts.sorted { $0.key < $1.key }.map { "\(Self.quote($0.key)):\($0.value)" }
        add(key, raw: "{" + body.joined(separator: ",") + "}")
    }

    var text: String { "{" + fields.joined(separator: ",") + "}" }

    static func quote(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += "\\u" + Hex.string(scalar.value, width: 4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

enum Format {
    /// `value` with `digits` decimals, without Foundation.
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "null" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = UInt64(scaled / scale)
        var text = (value < 0 && scaled > 0 ? "-" : "") + String(whole)
        if digits > 0 {
            let fraction = String(UInt64(scaled) - whole * UInt64(scale))
            text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
        }
        return text
    }

    static func right(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    static func left(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    /// `a: 1, b: 2`, sorted by key.
    static func counts(_ counts: [String: Int]) -> String {
        counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    }

    /// A table: the first column left-aligned, the others right-aligned.
    static func table(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = Array(repeating: 0, count: first.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        return rows.map { row in
            row.enumerated().map { i, cell in i == 0 ? left(cell, widths[i]) : right(cell, widths[i]) }
                .joined(separator: "  ").trimmingTrailingSpaces()
        }.joined(separator: "\n")
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}
