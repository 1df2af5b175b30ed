import Logging
import SwitchboardBasics
import SwitchboardCore

/// A swift-log handler writing one JSON object per line to standard output, off the event loops.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line: JSONObject = [
            "timestamp": .string(ISO8601Timestamp.format(milliseconds: SwitchboardClock.system.nowMilliseconds())),
            "level": .string(event.level.rawValue),
            "message": .string(event.message.description),
            "logger": .string(label),
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            line[key] = .string(value.description)
        }
        LineWriter.standardOutput.write(JSONValue.object(line).serialized())
    }
}
