import PostgresNIO

extension CallRecordStoreError {
    /// `error` as a ``CallRecordStoreError`` with `code`, its message starting with `context`.
    ///
    /// A server error keeps its message, detail and SQLSTATE; other PostgresNIO errors keep their code
    /// and underlying cause (PostgresNIO's own `description` is a deliberately generic text). The bound
    /// values of a failed query are left out: they would repeat user data in logs. Errors of this type
    /// and `CancellationError` pass through unchanged.
    static func wrappingPostgres(_ error: any Error, as code: Code, _ context: String) -> any Error {
        switch error {
        case is CallRecordStoreError, is CancellationError:
            return error
        case let error as PSQLError:
            if let server = error.serverInfo, let message = server[.message] {
                var text = "\(context): \(server[.localizedSeverity] ?? "ERROR"): \(message)"
                if let detail = server[.detail] { text += " (\(detail))" }
                return CallRecordStoreError(.postgres, code, text, sqlState: server[.sqlState])
            }
            var text = "\(context): \(error.code)"
            if let underlying = error.underlying { text += ": \(underlying)" }
            return CallRecordStoreError(.postgres, code, text)
        case let error as PostgresDecodingError:
            return CallRecordStoreError(.postgres, code, "\(context): cannot decode column \(error.columnName) (\(error.code))")
        default:
            return CallRecordStoreError(.postgres, code, "\(context): \(String(reflecting: error))")
        }
    }
}
