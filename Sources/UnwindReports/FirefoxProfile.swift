@_spi(Tools) import WasmUnwind

/// A profile in the Gecko profile format (version 30) that
/// profiler.firefox.com opens ("Load a profile from file") and upgrades to
/// its processed format: one thread, its samples in order (times are
/// sample index x interval), a stack table of (prefix, frame), a frame
/// table whose category tells wasm frames from host frames, and a string
/// table. The format: firefox-devtools/profiler,
/// docs-developer/gecko-profile-format.md.
public struct FirefoxProfile: Sendable {
    /// The Gecko format version written (`meta.version`).
    public static let version: Int64 = 30
    /// `meta.categories`: 0 other, 1 wasm, 2 host.
    static let categories = [("Other", "grey"), ("Wasm", "orange"), ("Host", "blue")]

    public var processName: String

    public init(processName: String = "wasm-unwind") {
        self.processName = processName
    }

    /// The profile as a JSON document.
    public func render(_ profile: Profile, pid: Int, tid: Int) -> String {
        var strings: [String] = []
        var stringIndex: [String: Int] = [:]
        func string(_ text: String) -> Int {
            if let index = stringIndex[text] { return index }
            strings.append(text)
            stringIndex[text] = strings.count - 1
            return strings.count - 1
        }
        var frames: [JSONValue] = []
        var frameIndex: [Profile.Frame: Int] = [:]
        func frame(_ frame: Profile.Frame) -> Int {
            if let index = frameIndex[frame] { return index }
            // location, relevantForJS, innerWindowID, implementation, line, column, category, subcategory
            // A frame with a source location: `name (file:line:column)`,
            // the form the profiler's source view reads, and its line and
            // column in their own fields.
            var location = frame.name
            if let file = frame.file {
                location = (frame.name.firstIndex(of: "(").map { String(frame.name[..<$0]) } ?? frame.name + " ")
                    + "(\(file)" + (frame.line.map { ":\($0)" + (frame.column.map { ":\($0)" } ?? "") } ?? "") + ")"
            }
            frames.append(.array([.integer(Int64(string(location))), .bool(false), .integer(0), .null,
                                  frame.line.map { .integer(Int64($0)) } ?? .null, frame.column.map { .integer(Int64($0)) } ?? .null,
                                  .integer(frame.isWasm ? 1 : 2), .integer(0)]))
            frameIndex[frame] = frames.count - 1
            return frames.count - 1
        }
        // The stack table: one node per distinct (prefix, frame).
        var stacks: [JSONValue] = []
        var stackIndex: [[Int]: Int] = [:]
        let leafStack = profile.stacks.map { stack -> Int in
            var prefix: Int? = nil
            var path: [Int] = []
            for entry in stack.frames {
                let index = frame(entry)
                path.append(index)
                if let known = stackIndex[path] {
                    prefix = known
                    continue
                }
                stacks.append(.array([prefix.map { .integer(Int64($0)) } ?? .null, .integer(Int64(index))]))
                stackIndex[path] = stacks.count - 1
                prefix = stacks.count - 1
            }
            return prefix ?? -1
        }
        let interval = Double(profile.intervalNanoseconds) / 1_000_000
        let samples = profile.sampleStacks.enumerated().map { index, stack -> JSONValue in
            .array([leafStack[stack] < 0 ? .null : .integer(Int64(leafStack[stack])), .number(Double(index) * interval), .integer(0)])
        }
        func table(_ schema: [String], _ data: [JSONValue]) -> JSONValue {
            .object([("schema", .object(schema.enumerated().map { ($1, .integer(Int64($0))) })), ("data", .array(data))])
        }
        let thread = JSONValue.object([
            ("name", .string("wasm")), ("processType", .string("default")), ("processName", .string(processName)),
            ("tid", .integer(Int64(tid))), ("pid", .integer(Int64(pid))),
            ("registerTime", .number(0)), ("unregisterTime", .null),
            ("markers", table(["name", "startTime", "endTime", "phase", "category", "data"], [])),
            ("samples", table(["stack", "time", "eventDelay"], samples)),
            ("frameTable", table(["location", "relevantForJS", "innerWindowID", "implementation", "line", "column",
                                  "category", "subcategory"], frames)),
            ("stackTable", table(["prefix", "frame"], stacks)),
            ("stringTable", .array(strings.map(JSONValue.string))),
        ])
        let meta = JSONValue.object([
            ("version", .integer(Self.version)), ("interval", .number(interval)), ("startTime", .number(0)),
            ("shutdownTime", .null), ("processType", .integer(0)), ("product", .string(processName)),
            ("stackwalk", .integer(1)), ("debug", .integer(0)), ("platform", .string("Linux")),
            ("oscpu", .string("x86_64")), ("abi", .string("x86_64-gcc3")), ("toolkit", .string("gtk")), ("misc", .string("")),
            ("categories", .array(Self.categories.map { name, color in
                .object([("name", .string(name)), ("color", .string(color)), ("subcategories", .array([.string("Other")]))])
            })),
            ("markerSchema", .array([])),
        ])
        return JSONValue.object([
            ("meta", meta), ("libs", .array([])), ("pausedRanges", .array([])), ("threads", .array([thread])),
            ("processes", .array([])),
        ]).rendered() + "\n"
    }
}
