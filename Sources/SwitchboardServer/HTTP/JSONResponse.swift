import Hummingbird
import SwitchboardCore

extension Response {
    /// A JSON response from a `JSONValue`.
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var body = ByteBuffer()
        body.writeString(value.serialized())
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: body)
        )
    }

    /// A plain-text response.
    static func text(
        _ text: String,
        status: HTTPResponse.Status = .ok,
        contentType: String = "text/plain; charset=utf-8"
    ) -> Response {
        var body = ByteBuffer()
        body.writeString(text)
        return Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: body))
    }
}
