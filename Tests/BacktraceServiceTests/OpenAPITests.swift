import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import WasmDWARF

/// docs/openapi.json against the real server: every documented answer of
/// every operation is produced by a real request, and each JSON body has
/// the documented shape; no answer is undocumented.
@Suite("docs/openapi.json describes the server", .serialized)
struct OpenAPITests {
    /// A small JSON Schema check: types, required properties, `$ref`,
    /// `allOf`, array items, enums. Problems, with their JSON paths.
    static func problems(_ value: Any, _ schema: [String: Any], _ document: [String: Any], at path: String = "$") -> [String] {
        if let reference = schema["$ref"] as? String {
            let name = String(reference.split(separator: "/").last ?? "")
            let schemas = (document["components"] as? [String: Any])?["schemas"] as? [String: Any]
            guard let target = schemas?[name] as? [String: Any] else { return ["\(path): unknown schema \(reference)"] }
            return problems(value, target, document, at: path)
        }
        if let all = schema["allOf"] as? [[String: Any]] { return all.flatMap { problems(value, $0, document, at: path) } }
        var result: [String] = []
        let types: [String] = (schema["type"] as? [String]) ?? ((schema["type"] as? String).map { [$0] } ?? [])
        if !types.isEmpty {
            let matches = types.contains { type in
                switch type {
                case "null": return value is NSNull
                // (JSONSerialization's booleans are NSNumbers of type "c".)
                case "boolean": return (value as? NSNumber).map { String(cString: $0.objCType) == "c" } ?? false
                case "integer": return (value as? NSNumber).map { !["c", "d", "f"].contains(String(cString: $0.objCType)) } ?? false
                case "string": return value is String
                case "array": return value is [Any]
                case "object": return value is [String: Any]
                default: return false
                }
            }
            if !matches { return ["\(path): \(type(of: value)) is not \(types.joined(separator: " or "))"] }
        }
        if let allowed = schema["enum"] as? [String], let text = value as? String, !allowed.contains(text) {
            result.append("\(path): \(text) is not one of \(allowed)")
        }
        if let object = value as? [String: Any] {
            for name in schema["required"] as? [String] ?? [] where object[name] == nil { result.append("\(path): no \(name)") }
            for (name, property) in schema["properties"] as? [String: [String: Any]] ?? [:] {
                if let inner = object[name] { result += problems(inner, property, document, at: "\(path).\(name)") }
            }
        }
        if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
            for (index, item) in array.enumerated() { result += problems(item, items, document, at: "\(path)[\(index)]") }
        }
        return result
    }

    @Test("every documented status of every operation, from real requests; bodies match their schemas; every path and method served")
    func contract() async throws {
        let document = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: ServiceTestSupport.root.appendingPathComponent("docs/openapi.json"))) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: [String: [String: Any]]])
        let work = try ServiceTestSupport.directory("openapi")
        defer { try? FileManager.default.removeItem(at: work) }
        let capture = try ServiceTestSupport.bytes(try #require(try ServiceTestSupport.captures(count: 1, in: work).first).path)
        let module = ServiceTestSupport.root.appendingPathComponent("fixtures/coredumps/divide.wasm")
        let moduleBytes = try ServiceTestSupport.bytes(module.path)
        let moduleID = ContentHash.sha256(moduleBytes).map { String(format: "%02x", $0) }.joined()

        // On loopback (reads open) and on every interface (reads need a token).
        let open = try ServerProcess(data: work.appendingPathComponent("data"), extra: ["--maximum-upload-bytes", "100000"])
        let closed = try ServerProcess(data: work.appendingPathComponent("closed"), extra: ["--host", "0.0.0.0"])
        let token = ["Authorization": "Bearer secret"]
        let stored = try await http("POST", "\(open.base)/api/v1/events", body: capture, headers: token)
        let event = try #require(stored.body["id"] as? Int)
        let group = try #require(stored.body["group"] as? Int)

        // (operation, status expected, the request).
        typealias Request = (method: String, url: String, body: [UInt8]?, headers: [String: String])
        let keyed = token.merging(["Idempotency-Key": "contract"]) { $1 }
        let requests: [(path: String, status: Int, request: Request)] = [
            ("/api/v1/events", 201, ("POST", "\(open.base)/api/v1/events?host=a&runtime=b&tags=x,y", capture, keyed)),
            ("/api/v1/events", 200, ("POST", "\(open.base)/api/v1/events", capture, keyed)),
            ("/api/v1/events", 400, ("POST", "\(open.base)/api/v1/events", Array(capture.prefix(100)), token)),
            ("/api/v1/events", 401, ("POST", "\(open.base)/api/v1/events", capture, [:])),
            ("/api/v1/events", 413, ("POST", "\(open.base)/api/v1/events", [UInt8](repeating: 1, count: 100_001), token)),
            ("/api/v1/modules/{id}", 201, ("PUT", "\(open.base)/api/v1/modules/\(moduleID)", moduleBytes, token)),
            ("/api/v1/modules/{id}", 400, ("PUT", "\(open.base)/api/v1/modules/abcd", moduleBytes, token)),
            ("/api/v1/modules/{id}", 401, ("PUT", "\(open.base)/api/v1/modules/\(moduleID)", moduleBytes, [:])),
            ("/api/v1/modules/{id}", 413, ("PUT", "\(open.base)/api/v1/modules/\(moduleID)", [UInt8](repeating: 0, count: 100_001), token)),
            ("/api/v1/groups", 200, ("GET", "\(open.base)/api/v1/groups", nil, [:])),
            ("/api/v1/groups", 401, ("GET", "\(closed.base)/api/v1/groups", nil, [:])),
            ("/api/v1/groups/{id}", 200, ("GET", "\(open.base)/api/v1/groups/\(group)", nil, [:])),
            ("/api/v1/groups/{id}", 401, ("GET", "\(closed.base)/api/v1/groups/\(group)", nil, [:])),
            ("/api/v1/groups/{id}", 404, ("GET", "\(open.base)/api/v1/groups/999999", nil, [:])),
            ("/api/v1/events/{id}", 200, ("GET", "\(open.base)/api/v1/events/\(event)", nil, [:])),
            ("/api/v1/events/{id}", 401, ("GET", "\(closed.base)/api/v1/events/\(event)", nil, [:])),
            ("/api/v1/events/{id}", 404, ("GET", "\(open.base)/api/v1/events/999999", nil, [:])),
            ("/api/v1/events/{id}/raw", 200, ("GET", "\(open.base)/api/v1/events/\(event)/raw", nil, [:])),
            ("/api/v1/events/{id}/raw", 401, ("GET", "\(closed.base)/api/v1/events/\(event)/raw", nil, [:])),
            ("/api/v1/events/{id}/raw", 404, ("GET", "\(open.base)/api/v1/events/999999/raw", nil, [:])),
            ("/metrics", 200, ("GET", "\(open.base)/metrics", nil, [:])),
            ("/metrics", 401, ("GET", "\(closed.base)/metrics", nil, [:])),
            ("/", 200, ("GET", "\(open.base)/?sort=last_seen&function=leaf", nil, [:])),
            ("/", 401, ("GET", "\(closed.base)/", nil, [:])),
            ("/groups/{id}", 200, ("GET", "\(open.base)/groups/\(group)", nil, [:])),
            ("/groups/{id}", 401, ("GET", "\(closed.base)/groups/\(group)", nil, [:])),
            ("/groups/{id}", 404, ("GET", "\(open.base)/groups/999999", nil, [:])),
        ]
        var seen: Set<String> = []
        for (path, expected, request) in requests {
            let operation = try #require(paths[path]?[request.method.lowercased()], "\(request.method) \(path) is not documented")
            let responses = try #require(operation["responses"] as? [String: [String: Any]])
            var urlRequest = URLRequest(url: URL(string: request.url)!)
            urlRequest.httpMethod = request.method
            for (name, value) in request.headers { urlRequest.setValue(value, forHTTPHeaderField: name) }
            if let body = request.body { urlRequest.httpBody = Data(body) }
            let (data, response) = try await URLSession.shared.data(for: urlRequest)
            let http = try #require(response as? HTTPURLResponse)
            #expect(http.statusCode == expected, "\(request.method) \(request.url): \(http.statusCode) \(String(decoding: data, as: UTF8.self))")
            let documented = try #require(responses[String(http.statusCode)], "\(request.method) \(path) answered \(http.statusCode), undocumented")
            let content = try #require(documented["content"] as? [String: [String: Any]], "\(path) \(http.statusCode) has no content")
            let contentType = String((http.value(forHTTPHeaderField: "Content-Type") ?? "").split(separator: ";")[0])
            let media = try #require(content[contentType], "\(path) \(http.statusCode): \(contentType) is not documented (\(content.keys))")
            if contentType == "application/json", let schema = media["schema"] as? [String: Any] {
                let value = try JSONSerialization.jsonObject(with: data)
                let found = Self.problems(value, schema, document)
                #expect(found.isEmpty, "\(request.method) \(path) \(http.statusCode): \(found)")
            }
            seen.insert("\(request.method.lowercased()) \(path) \(http.statusCode)")
        }
        // Every documented operation and answer was produced.
        let documented = Set(paths.flatMap { path, operations in
            operations.flatMap { method, operation in
                ((operation["responses"] as? [String: Any]) ?? [:]).keys.map { "\(method) \(path) \($0)" }
            }
        })
        #expect(documented == seen, "documented, not produced: \(documented.subtracting(seen).sorted()); produced, not documented: \(seen.subtracting(documented).sorted())")
    }
}
