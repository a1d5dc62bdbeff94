import BacktraceService
import Foundation
import Hummingbird
import Mustache
import NIOCore

/// The service's web page: server-rendered HTML (Mustache), no script. The
/// groups (sortable by count and last seen, each with its events per day
/// over two weeks), a group's page (its newest event's backtrace and its
/// events), and a search by function name. Everything shown came from an
/// upload: Mustache's `{{...}}` escapes it.
struct Pages: Sendable {
    let library: MustacheLibrary

    init() throws {
        library = MustacheLibrary(templates: [
            "layout-head": try MustacheTemplate(string: Self.head),
            "groups": try MustacheTemplate(string: Self.groups),
            "group": try MustacheTemplate(string: Self.group),
        ])
    }

    static let head = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>{{title}} — wasm-unwind</title>
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
        h1 { font-size: 20px; } a { color: #1559b3; text-decoration: none; } a:hover { text-decoration: underline; }
        table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #ddd; }
        th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
        pre { background: #f7f7f7; padding: 10px; overflow-x: auto; } .muted { color: #777; }
        form { margin: 1em 0; } input[type=text] { padding: 4px; width: 20em; }
        svg rect { fill: #c0392b; }
        </style></head><body>
        """

    static let groups = """
        {{> layout-head}}
        <h1>Crash groups</h1>
        <p class="muted">{{total}} events in {{count}} groups{{#function}} with a frame of <b>{{function}}</b> (<a href="/">all</a>){{/function}}</p>
        <form action="/" method="get"><input type="text" name="function" placeholder="function name" value="{{function}}">
        <input type="submit" value="Search"></form>
        <table id="groups"><tr><th>Group</th><th><a href="/?sort=count{{#function}}&function={{function}}{{/function}}">Events</a></th>
        <th>Last 14 days</th><th>First seen</th><th><a href="/?sort=last_seen{{#function}}&function={{function}}{{/function}}">Last seen</a></th><th>Hosts</th></tr>
        {{#groups}}<tr class="group"><td><a href="/groups/{{id}}">{{title}}</a></td><td class="n">{{count}}</td>
        <td><svg width="98" height="20" role="img" aria-label="events per day">{{#bars}}<rect x="{{x}}" y="{{y}}" width="6" height="{{height}}"><title>{{day}}: {{events}}</title></rect>{{/bars}}</svg></td>
        <td>{{firstSeen}}</td><td>{{lastSeen}}</td><td>{{hosts}}</td></tr>
        {{/groups}}
        </table>
        {{^groups}}<p>No crashes{{#function}} with that function{{/function}}.</p>{{/groups}}
        </body></html>
        """

    static let group = """
        {{> layout-head}}
        <p><a href="/">← all groups</a></p>
        <h1>{{title}}</h1>
        <p class="muted">{{count}} events, first seen {{firstSeen}}, last seen {{lastSeen}}; hosts: {{hosts}}; signature version {{version}}</p>
        {{#newest}}<h2>Newest event ({{receivedAt}}, {{host}})</h2>
        <pre id="backtrace">{{reason}}
        {{#frames}}{{index}}: {{#offset}}{{offset}} - {{/offset}}{{name}}
        {{#inlined}}          inlined: {{.}}
        {{/inlined}}{{#at}}          at {{at}}
        {{/at}}{{/frames}}</pre>{{/newest}}
        <h2>Events</h2>
        <table id="events"><tr><th>Event</th><th>Received</th><th>Host</th><th>Runtime</th><th>Kind</th><th>Size</th><th></th></tr>
        {{#events}}<tr class="event"><td><a href="/api/v1/events/{{id}}">{{id}}</a></td><td>{{receivedAt}}</td><td>{{host}}</td><td>{{runtime}}</td>
        <td>{{kind}}</td><td class="n">{{size}}</td><td><a href="/api/v1/events/{{id}}/raw">raw</a></td></tr>
        {{/events}}</table>
        </body></html>
        """

    static func day(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        return formatter.string(from: date)
    }

    /// The groups page.
    func groups(_ store: EventStore, order: EventStore.GroupOrder, function: String?) async throws -> String {
        let groups = try await store.groups(order: order, function: function)
        let daily = try await store.dailyCounts()
        let today = Int(Date().timeIntervalSince1970 / 86_400)
        let rows: [[String: Any]] = groups.map { group in
            let counts = daily[group.id] ?? Array(repeating: 0, count: 14)
            let most = max(1, counts.max() ?? 1)
            let bars: [[String: Any]] = counts.enumerated().map { index, events in
                let height = events == 0 ? 1 : max(2, events * 20 / most)
                let day = Date(timeIntervalSince1970: Double(today - 13 + index) * 86_400)
                return ["x": index * 7, "y": 20 - height, "height": height, "events": events,
                        "day": String(Self.day(day).prefix(10))]
            }
            return ["id": group.id, "title": group.title, "count": group.count, "firstSeen": Self.day(group.firstSeen),
                    "lastSeen": Self.day(group.lastSeen), "hosts": group.hosts.joined(separator: ", "), "bars": bars]
        }
        // (An absent key, not an Optional in Any: Mustache shows a nil
        // Optional as "nil".)
        var context: [String: Any] = ["title": "Crash groups", "groups": rows, "count": groups.count,
                                      "total": groups.reduce(0) { $0 + $1.count }]
        if let function { context["function"] = function }
        return library.render(context, withTemplate: "groups") ?? ""
    }

    /// A group's page, or nil if there is no such group.
    func group(_ store: EventStore, id: Int64) async throws -> String? {
        guard let group = try await store.group(id) else { return nil }
        let events = try await store.events(inGroup: id, limit: 100)
        let newest: [String: Any]? = events.first.map { event in
            ["receivedAt": Self.day(event.receivedAt), "host": event.host ?? "unknown host", "reason": event.reason,
             "frames": event.frames.enumerated().map { index, frame in
                 var line: [String: Any] = ["index": String(repeating: " ", count: max(0, 4 - String(index).count)) + String(index),
                                            "name": (frame.module.map { $0 + "!" } ?? "") + frame.function]
                 if let offset = frame.moduleOffset { line["offset"] = "0x" + String(offset, radix: 16) }
                 if let file = frame.file { line["at"] = file + (frame.line.map { ":\($0):\(frame.column ?? 0)" } ?? "") }
                 if let inlined = frame.inlined { line["inlined"] = inlined }
                 return line
             }]
        }
        var context: [String: Any] = [
            "title": group.title, "count": group.count, "firstSeen": Self.day(group.firstSeen), "lastSeen": Self.day(group.lastSeen),
            "hosts": group.hosts.joined(separator: ", "), "version": group.signatureVersion,
            "events": events.map { event in
                ["id": event.id, "receivedAt": Self.day(event.receivedAt), "host": event.host ?? "", "runtime": event.runtime ?? "",
                 "kind": event.kind, "size": event.size] as [String: Any]
            },
        ]
        if let newest { context["newest"] = newest }
        return library.render(context, withTemplate: "group")
    }

    static func html(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
