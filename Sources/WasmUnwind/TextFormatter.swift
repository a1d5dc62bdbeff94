/// Reports as people read them: frames in Wasmtime's layout.
///
/// ```
///     0:     0x26 - hello_mod!hello
///     1:     0x2d - hello_mod!<wasm function 1>
/// ```
///
/// (`format!("  {i:>3}: {offset:#8x} - {module}!{name}")`, `<unknown>` for
/// a module without a name, `<wasm function N>` for a function without one,
/// no offset for code of no wasm instruction.) Unlike Wasmtime, which keeps
/// the newest 20 frames, the whole stack is printed, with runs of
/// `foldingThreshold` or more identical frames (same function and offset,
/// in one activation) on one line:
///
/// ```
///     1-16324:     0x96 - traps!recurse (16,324 times)
/// ```
public struct TextFormatter: ReportFormatter {
    /// Runs of at least this many identical frames print as one line.
    public var foldingThreshold: Int

    public init(foldingThreshold: Int = 10) {
        self.foldingThreshold = foldingThreshold
    }

    public var rendersEventsAsTheyHappen: Bool { true }

    // MARK: Backtraces

    /// The frames, one line per frame or run; with `activationBoundaries`, a
    /// line marks where the host frames between two activations were
    /// skipped. A truncated trace ends with a line saying why; an
    /// incomplete one with the error that stopped the walk.
    public func render(_ backtrace: SymbolicatedBacktrace, activationBoundaries: Bool = false) -> String {
        backtrace.frames.withUnsafeBufferPointer { render(backtrace, frames: $0, activationBoundaries: activationBoundaries) }
    }

    private func render(_ backtrace: SymbolicatedBacktrace, frames: UnsafeBufferPointer<SymbolicatedFrame>,
                        activationBoundaries: Bool) -> String {
        // One byte buffer, appended to: a line is a few appends, no
        // temporaries; made a string once.
        var out: [UInt8] = []
        out.reserveCapacity(min(frames.count, 64) * 48)
        var activation = frames.first?.frame.activation ?? 0
        var index = 0
        while index < frames.count {
            let frame = frames[index]
            if activationBoundaries, frame.frame.activation != activation {
                activation = frame.frame.activation
                if !out.isEmpty { out.append(UInt8(ascii: "\n")) }
                out.append(contentsOf: "       -- host frames; activation \(activation) --".utf8)
            }
            var end = index + 1
            let base = frames.baseAddress!
            while end < frames.count, SymbolicatedFrame.isSameCode(base + index, base + end) || Self.sameCode(frames[end], frame) {
                end += 1
            }
            if !out.isEmpty { out.append(UInt8(ascii: "\n")) }
            if end - index >= foldingThreshold {
                let first = String(index)
                Self.appendLine(label: String(repeating: " ", count: max(0, 5 - first.count)) + first + "-\(end - 1)",
                                frame: frame, to: &out)
                out.append(contentsOf: " (\(Self.grouped(end - index)) times)".utf8)
                index = end
            } else {
                Self.appendLine(index: index, frame: frame, to: &out)
                index += 1
            }
        }
        var lines = out.isEmpty ? [] : [String(decoding: out, as: UTF8.self)]
        switch backtrace.truncation {
        case .requested(_, let omitted?)?:
            lines.append("       ... (backtrace truncated after \(Self.grouped(frames.count)) frames; \(Self.grouped(omitted)) more not shown)")
        case .requested?:
            lines.append("       ... (backtrace truncated after \(Self.grouped(frames.count)) frames)")
        case .bufferFull(let capacity)?:
            lines.append("       ... older frames not recorded: a trap records only the newest \(Self.grouped(capacity)) frames")
        case nil:
            break
        }
        if let error = backtrace.error {
            lines.append("backtrace incomplete after \(frames.count) frames: \(error) [\(error.rule)]")
        }
        return lines.joined(separator: "\n")
    }

    /// Whether two frames print the same (a run to fold).
    static func sameCode(_ a: SymbolicatedFrame, _ b: SymbolicatedFrame) -> Bool {
        a.frame.activation == b.frame.activation && a.symbol != nil && a.symbol?.moduleName == b.symbol?.moduleName
            && a.symbol?.function?.index == b.symbol?.function?.index && a.symbol?.stub == b.symbol?.stub
            && a.symbol?.moduleOffset == b.symbol?.moduleOffset
    }

    /// One frame in Wasmtime's layout.
    public static func line(index: Int, frame: SymbolicatedFrame) -> String {
        line(label: String(index), frame: frame)
    }

    static func line(label: String, frame: SymbolicatedFrame) -> String {
        var out: [UInt8] = []
        appendLine(label: label, frame: frame, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `line(index:frame:)`, appended to `out`.
    static func appendLine(index: Int, frame: SymbolicatedFrame, to out: inout [UInt8]) {
        // The index right-aligned in five columns.
        var digits = 0, value = index
        repeat { digits += 1; value /= 10 } while value > 0
        for _ in 0..<max(0, 5 - digits) { out.append(UInt8(ascii: " ")) }
        appendDecimal(index, digits: digits, to: &out)
        out.append(UInt8(ascii: ":"))
        out.append(UInt8(ascii: " "))
        appendDescription(frame, to: &out)
    }

    static func appendDecimal(_ value: Int, digits: Int, to out: inout [UInt8]) {
        let start = out.count
        for _ in 0..<digits { out.append(0) }
        var rest = value, position = out.count
        repeat {
            position -= 1
            out[position] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        } while rest > 0 && position > start
    }

    static func appendLine(label: String, frame: SymbolicatedFrame, to out: inout [UInt8]) {
        for _ in 0..<max(0, 5 - label.count) { out.append(UInt8(ascii: " ")) }
        out.append(contentsOf: label.utf8)
        out.append(UInt8(ascii: ":"))
        out.append(UInt8(ascii: " "))
        appendDescription(frame, to: &out)
    }

    /// `describe(_:)`, appended to `out`.
    static func appendDescription(_ frame: SymbolicatedFrame, to out: inout [UInt8]) {
        guard let symbol = frame.symbol else {
            out.append(contentsOf: "<unregistered code at \(hex(frame.frame.address.rawValue))>".utf8)
            return
        }
        if let offset = symbol.moduleOffset {
            // `{offset:#8x}`: "0x" and the hex digits, right-aligned in 8.
            var digits = 0, value = offset
            repeat { digits += 1; value >>= 4 } while value > 0
            for _ in 0..<max(0, 6 - digits) { out.append(UInt8(ascii: " ")) }
            out.append(UInt8(ascii: "0"))
            out.append(UInt8(ascii: "x"))
            var shift = 4 * (digits - 1)
            while shift >= 0 {
                let digit = UInt8((offset >> UInt32(shift)) & 0xF)
                out.append(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
                shift -= 4
            }
            out.append(contentsOf: " - ".utf8)
        }
        appendName(of: symbol, to: &out)
    }

    static func appendName(of symbol: FrameSymbol, to out: inout [UInt8]) {
        if let module = symbol.moduleName { out.append(contentsOf: module.utf8) } else { out.append(contentsOf: "<unknown>".utf8) }
        out.append(UInt8(ascii: "!"))
        if let index = symbol.functionIndex {
            if let name = symbol.functionName {
                out.append(contentsOf: Demangling.demangle(name).utf8)
            } else {
                out.append(contentsOf: "<wasm function \(index)>".utf8)
            }
        } else if let stub = symbol.stub {
            out.append(UInt8(ascii: "<"))
            out.append(contentsOf: (stub.name ?? stub.kind.description).utf8)
            out.append(UInt8(ascii: ">"))
        } else {
            out.append(contentsOf: "<no code>".utf8)
        }
    }

    /// `0x26 - hello_mod!hello`, padded as Wasmtime pads it, without the index.
    public static func describe(_ frame: SymbolicatedFrame) -> String {
        var out: [UInt8] = []
        appendDescription(frame, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `module!function`: `<unknown>` for a module without a name, `<wasm
    /// function N>` for a function without one, a Rust or C++ name
    /// demangled (`Demangling`), `<entry trampoline>` for a trampoline,
    /// `<no code>` for padding between them.
    public static func name(of symbol: FrameSymbol) -> String {
        var out: [UInt8] = []
        appendName(of: symbol, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `16,324`.
    static func grouped(_ number: Int) -> String {
        let digits = String(number.magnitude)
        var out = ""
        for (position, digit) in digits.enumerated() {
            if position > 0, (digits.count - position) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return (number < 0 ? "-" : "") + out
    }

    // MARK: Reports

    /// Wasmtime's display of a trap:
    ///
    /// ```
    /// error while executing at wasm backtrace:
    ///     0:     0x23 - m!die
    /// wasm trap: wasm `unreachable` instruction executed
    /// ```
    ///
    /// with the cause, if there is one, on the line before the message.
    public func render(_ trap: TrapReport) -> String {
        var out = "error while executing at wasm backtrace:\n"
        out.append(render(trap.backtrace))
        out.append("\n")
        if let cause = trap.cause {
            out.append(cause)
            out.append("\n")
        }
        out.append(trap.message)
        return out
    }

    public func render(_ event: RunEvent) -> String {
        switch event {
        case .backtrace(let backtrace):
            return "wasm backtrace:\n" + render(backtrace)
        case .hybrid(let frames):
            return render(frames)
        case .collection(let summary):
            var lines = ["gc: \(summary.stackRoots.count) roots in wasm frames, \(summary.hostRootCount) held by the host; "
                         + "\(summary.freedCount) objects freed, \(summary.aliveCount) alive"]
            lines += summary.stackRoots.map(render)
            return lines.joined(separator: "\n")
        case .printed(_, let value):
            return value
        }
    }

    /// A root: its frame's line, then the slot and the reference.
    func render(_ root: RootReport) -> String {
        Self.line(index: root.root.frameIndex, frame: root.frame) + "    fp\(root.frameOffset) = \(hex(root.root.value))"
            + (root.object.map { " (\($0))" } ?? "")
    }

    /// Every frame on the stack, one per line: index, pc, and what it is.
    ///
    /// ```
    /// hybrid backtrace:
    ///     6: 0x7f976092e19a  [exit trampoline]
    ///     7: 0x7f976092e092  wasm   0x5d - nest!step
    ///     8: 0x7f976092e030  wasm   0x53 - nest!descend
    ///     9: 0x7f976092e10b  [entry trampoline]
    ///    10: 0x5592d1a2b201  host   wu_invoke + 113
    /// ```
    public func render(_ frames: [HybridFrame]) -> String {
        var lines = ["hybrid backtrace:"]
        for (index, frame) in frames.enumerated() {
            let label = String(index)
            let prefix = String(repeating: " ", count: max(0, 5 - label.count)) + label + ": " + hex(frame.pc) + "  "
            switch frame {
            case .host(_, let name, let offset):
                lines.append(prefix + "host   " + (name.map { "\($0) + \(offset)" } ?? "<unknown>"))
            case .stub(_, let kind):
                lines.append(prefix + "[\(kind)]")
            case .wasm(let wasm):
                lines.append(prefix + "wasm   " + Self.describe(wasm).drop { $0 == " " })
            case .unmatchedWasm:
                lines.append(prefix + "wasm   (the walk has no frame here)")
            }
        }
        return lines.joined(separator: "\n")
    }

    public func render(_ run: RunReport) -> String {
        var parts = run.events.map(render)
        if let results = run.results { parts += results.map(\.value) }
        if let trap = run.trap { parts.append(render(trap)) }
        if let error = run.error { parts.append("error: \(error)") }
        return parts.joined(separator: "\n")
    }

    // MARK: Dumps

    public func render(_ dump: DumpReport) -> String {
        dump.entries.map { entry in
            switch entry {
            case .dump(let dump): return render(dump)
            case .failure(let file, let message): return "\(file): \(message)"
            }
        }.joined(separator: "\n\n")
    }

    /// The summary line, the frames with activation boundaries, the trap,
    /// and what was asked for: roots, the hybrid backtrace, the comparison
    /// with libunwind.
    public func render(_ dump: CaptureDump) -> String {
        let count = dump.activationCount
        let place = dump.place == .trap ? "at a trap" : "at a host call"
        var lines = ["\(dump.file): \(count) activation\(count == 1 ? "" : "s"), captured \(place); "
                     + "\(dump.stackBytes) bytes of stack, \(dump.moduleCount) module\(dump.moduleCount == 1 ? "" : "s")"
                     + (dump.note.map { " (\($0))" } ?? "")]
        let frames = render(dump.backtrace, activationBoundaries: true)
        if !frames.isEmpty { lines.append(frames) }
        if let trap = dump.trap { lines.append("wasm trap: \(trap.message)") }
        if let roots = dump.roots {
            lines.append("gc roots: \(roots.count)")
            lines += roots.map(render)
        }
        if let error = dump.rootsError { lines.append("gc roots: \(error)") }
        if let hybrid = dump.hybrid { lines.append(render(hybrid)) }
        if let error = dump.hybridError { lines.append("hybrid backtrace: \(error)") }
        if let verification = dump.verification { lines.append(render(verification)) }
        return lines.joined(separator: "\n")
    }

    /// `verify: libunwind agrees ...`, or the rows of every activation that
    /// does not match.
    public func render(_ verification: [FrameComparison]) -> String {
        let frames = verification.reduce(0) { $0 + $1.framesCompared }
        if verification.allSatisfy(\.isMatch) {
            return "verify: libunwind agrees on all \(frames) wasm frames in \(verification.count) activation\(verification.count == 1 ? "" : "s")"
        }
        var lines = ["verify: libunwind disagrees with the walk"]
        for (index, comparison) in verification.enumerated() where !comparison.isMatch {
            lines.append("activation \(index):")
            lines.append(render(comparison))
        }
        return lines.joined(separator: "\n")
    }

    /// A frame-by-frame table: both unwinders' view of each position.
    public func render(_ comparison: FrameComparison) -> String {
        func describe(_ entry: FrameComparison.Entry?) -> String {
            guard let entry else { return "-" }
            guard entry.kind == .wasmFunction else { return entry.kind.description + (entry.pc.map { " \(hex($0))" } ?? "") }
            guard let pc = entry.pc else { return "wasm" }
            guard let symbol = entry.symbol else { return hex(pc) + " <not wasm>" }
            return hex(pc) + " " + Self.name(of: symbol) + (symbol.moduleOffset.map { " @" + hex($0) } ?? "")
        }
        var lines = ["  #  walker (expected)                          libunwind"]
        for row in comparison.rows {
            let number = String(row.index)
            lines.append((row.matches ? "   " : "!! ") + String(repeating: " ", count: max(0, 3 - number.count)) + number + "  "
                         + describe(row.expected).padding(to: 42) + " " + describe(row.found)
                         + (row.problem.map { "  (\($0))" } ?? ""))
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    /// Padded with spaces to at least `width` characters.
    func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
