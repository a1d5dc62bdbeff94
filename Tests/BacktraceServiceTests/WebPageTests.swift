import Foundation
import Testing

/// headless Chromium, if installed (`make tools` installs it).
let chromium: String? = ["/usr/bin/chromium-headless-shell", "/usr/bin/chromium"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// Chromium's DOM of a page after it loaded, and a screenshot of it.
func browse(_ url: String, screenshot: URL) throws -> String {
    func chrome(_ arguments: [String]) throws -> String {
        try ServiceTestSupport.launch(chromium!, ["--no-sandbox", "--disable-gpu"] + arguments + [url]).stdout
    }
    _ = try chrome(["--screenshot=\(screenshot.path)", "--window-size=1100,600"])
    return try chrome(["--dump-dom"])
}

@Suite("The service's web page, loaded in headless Chromium", .serialized)
struct WebPageTests {
    @Test("the groups page lists every group with its count and per-day bars, sorts by count and last seen, searches by function; a group's page shows its newest backtrace and its events",
          .enabled(if: chromium != nil, "no headless Chromium (make tools installs it)"))
    func pages() async throws {
        let work = try ServiceTestSupport.directory("web")
        defer { try? FileManager.default.removeItem(at: work) }
        let server = try ServerProcess(data: work.appendingPathComponent("data"))
        // Kind 0 twice (deepest first), kind 1 once, kind 2 last.
        let captures = try ServiceTestSupport.captures(count: 2, in: work)
        for capture in [captures[0], captures[1], captures[2], captures[4]] {
            let answer = try await http("POST", "\(server.base)/api/v1/events?host=web-1", body: try ServiceTestSupport.bytes(capture.path),
                                        headers: ["Authorization": "Bearer secret"])
            #expect(answer.status == 201)
        }
        let dom = try browse(server.base + "/", screenshot: work.appendingPathComponent("groups.png"))
        let rows = dom.components(separatedBy: "<tr class=\"group\">").dropFirst()
        #expect(rows.count == 3, "\(dom)")
        // Most events first: the `unreachable` group with 2.
        #expect(rows.first?.contains("wasm trap: wasm `unreachable` instruction executed in abort!leaf") == true
                && rows.first?.contains("<td class=\"n\">2</td>") == true, "\(rows.first ?? "")")
        // Fourteen bars per group, today's the tallest.
        #expect(rows.allSatisfy { $0.components(separatedBy: "<rect").count - 1 == 14 && $0.contains("height=\"20\"") })
        let png = try Data(contentsOf: work.appendingPathComponent("groups.png"))
        #expect(png.count > 10_000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "\(png.count) bytes")

        // Newest first: the load group, uploaded last.
        let byTime = try browse(server.base + "/?sort=last_seen", screenshot: work.appendingPathComponent("recent.png"))
        #expect(byTime.components(separatedBy: "<tr class=\"group\">").dropFirst().first?.contains("load!leaf") == true, "\(byTime)")
        // A search by function name: only the groups with that function.
        let search = try browse(server.base + "/?function=leaf", screenshot: work.appendingPathComponent("search.png"))
        #expect(search.components(separatedBy: "<tr class=\"group\">").count - 1 == 3)
        let none = try browse(server.base + "/?function=no_such_function", screenshot: work.appendingPathComponent("none.png"))
        #expect(none.contains("No crashes with that function"), "\(none)")

        let groupID = try #require(rows.first.flatMap { row in
            row.components(separatedBy: "href=\"/groups/").dropFirst().first?.prefix { $0.isNumber }
        })
        let page = try browse(server.base + "/groups/\(groupID)", screenshot: work.appendingPathComponent("group.png"))
        #expect(page.contains("<pre id=\"backtrace\">wasm trap: wasm `unreachable` instruction executed"), "\(page)")
        #expect(page.contains(" - abort!leaf") && page.contains("abort!step") && page.components(separatedBy: "<tr class=\"event\">").count - 1 == 2,
                "\(page)")
    }
}
