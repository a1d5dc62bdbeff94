@_spi(Tools) import WasmUnwind

/// A sampled profile as stacks of named frames with their sample counts:
/// what a sampling profiler aggregates its samples into, and what the
/// output formats (folded stacks, an SVG flame graph) render.
public struct Profile: Hashable, Sendable {
    /// One frame of a stack.
    public struct Frame: Hashable, Sendable {
        public var name: String
        /// Wasm code (drawn warm), or host code (drawn cool).
        public var isWasm: Bool
        /// The source location, when frames are labelled with lines from
        /// the module's DWARF (then `name` ends with ` (FILE:LINE)`).
        public var file: String?
        public var line: UInt32?
        public var column: UInt32?

        public init(name: String, isWasm: Bool, file: String? = nil, line: UInt32? = nil, column: UInt32? = nil) {
            self.name = name
            self.isWasm = isWasm
            self.file = file
            self.line = line
            self.column = column
        }

        /// A frame is its label: samples at two columns of one line are one
        /// frame (the first one's location is kept).
        public static func == (a: Frame, b: Frame) -> Bool { a.name == b.name && a.isWasm == b.isWasm }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(name)
            hasher.combine(isWasm)
        }
    }

    /// A distinct stack, oldest frame first, and how many samples had it.
    public struct Stack: Hashable, Sendable {
        public var frames: [Frame]
        public var count: Int

        public init(frames: [Frame], count: Int) {
            self.frames = frames
            self.count = count
        }
    }

    /// Distinct stacks, most samples first.
    public var stacks: [Stack]
    /// Each sample's stack (an index in `stacks`), in the order taken.
    public var sampleStacks: [Int]
    /// The sampling interval, in nanoseconds (for the formats that record it).
    public var intervalNanoseconds: UInt64

    /// Aggregates stacks (oldest frame first), one per sample.
    public init(samples: [[Frame]], intervalNanoseconds: UInt64) {
        var counts: [[Frame]: Int] = [:]
        var order: [[Frame]] = []
        for stack in samples {
            if counts[stack] == nil { order.append(stack) }
            counts[stack, default: 0] += 1
        }
        stacks = order.map { Stack(frames: $0, count: counts[$0]!) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.frames.map(\.name).lexicographicallyPrecedes($1.frames.map(\.name)) }
        var position: [[Frame]: Int] = [:]
        for (index, stack) in stacks.enumerated() { position[stack.frames] = index }
        sampleStacks = samples.map { position[$0]! }
        self.intervalNanoseconds = intervalNanoseconds
    }

    /// All samples.
    public var sampleCount: Int { stacks.reduce(0) { $0 + $1.count } }

    /// The share of samples whose stack contains a frame named `name`
    /// (inclusive time), from 0 to 1.
    public func share(of name: String) -> Double {
        guard sampleCount > 0 else { return 0 }
        let count = stacks.filter { $0.frames.contains { $0.name == name } }.reduce(0) { $0 + $1.count }
        return Double(count) / Double(sampleCount)
    }

    /// Folded stacks: `outer;middle;leaf COUNT` per line, what
    /// flamegraph.pl, inferno and speedscope read. `;` in a name becomes
    /// `:` (it separates frames).
    public var folded: String {
        stacks.map { stack in
            stack.frames.map { $0.name.replacingSemicolons() }.joined(separator: ";") + " \(stack.count)\n"
        }.joined()
    }
}

extension String {
    fileprivate func replacingSemicolons() -> String {
        String(map { $0 == ";" ? ":" : $0 })
    }
}
