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
        var out = TextBuffer(capacity: min(frames.count, 64) * 48)
        var activation = frames.first?.frame.activation ?? 0
        var index = 0
        // Frames are read in place (no copy, no reference counted per line).
        let base = frames.baseAddress
        while index < frames.count, let base {
            let frame = base + index
            if activationBoundaries, frame.pointee.frame.activation != activation {
                activation = frame.pointee.frame.activation
                if !out.isEmpty { out.append(UInt8(ascii: "\n")) }
                out.append("       -- host frames; activation \(activation) --")
            }
            var end = index + 1
            while end < frames.count, SymbolicatedFrame.isSameCode(frame, base + end) || Self.sameCode(base + end, frame) {
                end += 1
            }
            if !out.isEmpty { out.append(UInt8(ascii: "\n")) }
            if end - index >= foldingThreshold {
                let first = String(index)
                Self.appendLine(label: String(repeating: " ", count: max(0, 5 - first.count)) + first + "-\(end - 1)",
                                frame: frame, to: &out)
                out.append(" (\(Self.grouped(end - index)) times)")
                index = end
            } else {
                // A run too short to fold: every line of it, each searched once.
                Self.appendLine(index: index, frame: frame, to: &out)
                for line in index + 1 ..< end {
                    out.append(UInt8(ascii: "\n"))
                    Self.appendLine(index: line, frame: base + line, to: &out)
                }
                index = end
            }
        }
        var lines = out.isEmpty ? [] : [out.string]
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

    /// Whether two frames print the same (a run to fold): same code of one
    /// registered module, or the same text from two registrations.
    static func sameCode(_ a: UnsafePointer<SymbolicatedFrame>, _ b: UnsafePointer<SymbolicatedFrame>) -> Bool {
        guard a.pointee.frame.activation == b.pointee.frame.activation,
              let first = BorrowedSymbol(a), let second = BorrowedSymbol(b),
              first.wasmOffset == second.wasmOffset, first.hasCode, second.hasCode else { return false }
        if first.record.toOpaque() == second.record.toOpaque() {
            return first.functionSlot == second.functionSlot && first.stubSlot == second.stubSlot
        }
        return first.withDisplayName { one in second.withDisplayName { one.elementsEqual($0) } }
    }

    /// One frame in Wasmtime's layout.
    public static func line(index: Int, frame: SymbolicatedFrame) -> String {
        line(label: String(index), frame: frame)
    }

    static func line(label: String, frame: SymbolicatedFrame) -> String {
        var out = TextBuffer()
        withUnsafePointer(to: frame) { appendLine(label: label, frame: $0, to: &out) }
        return out.string
    }

    /// `line(index:frame:)`, appended to `out`: the index right-aligned in
    /// five columns.
    static func appendLine(index: Int, frame: UnsafePointer<SymbolicatedFrame>, to out: inout TextBuffer) {
        out.appendDecimal(index, width: 5)
        out.append(UInt8(ascii: ":"))
        out.append(UInt8(ascii: " "))
        appendDescription(frame, to: &out)
    }

    static func appendLine(label: String, frame: UnsafePointer<SymbolicatedFrame>, to out: inout TextBuffer) {
        out.append(UInt8(ascii: " "), times: 5 - label.count)
        out.append(label)
        out.append(UInt8(ascii: ":"))
        out.append(UInt8(ascii: " "))
        appendDescription(frame, to: &out)
    }

    /// `describe(_:)`, appended to `out`; the frame is read in place.
    static func appendDescription(_ frame: UnsafePointer<SymbolicatedFrame>, to out: inout TextBuffer) {
        guard let symbol = BorrowedSymbol(frame) else {
            out.append("<unregistered code at \(hex(frame.pointee.frame.address.rawValue))>")
            return
        }
        if let offset = symbol.moduleOffset {
            // `{offset:#8x}`.
            out.appendHex(UInt64(offset), width: 8)
            out.append(UInt8(ascii: " "))
            out.append(UInt8(ascii: "-"))
            out.append(UInt8(ascii: " "))
        }
        if symbol.hasCode {
            symbol.withDisplayName { out.append($0) }
        } else {
            appendName(of: frame.pointee.symbol!, to: &out)
        }
    }

    static func appendName(of symbol: borrowing FrameSymbol, to out: inout TextBuffer) {
        guard symbol.hasCode else {
            out.append(symbol.moduleName ?? "<unknown>")
            out.append("!<no code>")
            return
        }
        withExtendedLifetime(symbol) {
            out.append(symbol.record.displayName(function: symbol.functionSlot, stub: symbol.stubSlot))
        }
    }

    /// `0x26 - hello_mod!hello`, padded as Wasmtime pads it, without the index.
    public static func describe(_ frame: SymbolicatedFrame) -> String {
        var out = TextBuffer()
        withUnsafePointer(to: frame) { appendDescription($0, to: &out) }
        return out.string
    }

    /// `module!function`: `<unknown>` for a module without a name, `<wasm
    /// function N>` for a function without one, a Rust or C++ name
    /// demangled (`Demangling`), `<entry trampoline>` for a trampoline,
    /// `<no code>` for padding between them.
    public static func name(of symbol: FrameSymbol) -> String {
        var out = TextBuffer()
        appendName(of: symbol, to: &out)
        return out.string
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
    /// `thrown Wasm exception (payload: i32 42)`, then where the handler
    /// search stops:
    ///
    /// ```
    /// handler: frame 2 (exceptions!catcher @ 0x55): catch tag 0 -> +0x16f (values at fp-24); resumes with sp 0x7ffe... at 0x7f9c...
    /// ```
    func render(_ thrown: ThrowReport) -> [String] {
        var lines = ["thrown Wasm exception" + (thrown.payload.isEmpty ? "" : " (payload: \(thrown.payload.joined(separator: ", ")))")]
        if let handler = thrown.handler {
            let place = handler.frame.symbol.map { symbol in
                Self.name(of: symbol) + (symbol.moduleOffset.map { " @ " + hex($0) } ?? "")
            } ?? hex(handler.frame.frame.address.rawValue)
            lines.append("handler: frame \(handler.frameIndex) (\(place)): \(handler.handler); "
                         + "resumes with sp \(hex(handler.stackPointer)) at \(hex(handler.landingPad))")
        } else if let error = thrown.searchError {
            lines.append("handler: the search stopped: \(error)")
        } else {
            lines.append("handler: none in the newest activation (the exception leaves it)")
        }
        return lines
    }

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
        let place: String
        switch dump.place {
        case .trap: place = "captured at a trap"
        case .throw: place = "captured at a throw"
        case .hostCall: place = "captured at a host call"
        case .interrupted: place = "interrupted in wasm"
        }
        var lines = ["\(dump.file): \(count) activation\(count == 1 ? "" : "s"), \(place); "
                     + "\(dump.stackBytes) bytes of stack, \(dump.moduleCount) module\(dump.moduleCount == 1 ? "" : "s")"
                     + (dump.note.map { " (\($0))" } ?? "")]
        let frames = render(dump.backtrace, activationBoundaries: true)
        if !frames.isEmpty { lines.append(frames) }
        if let trap = dump.trap { lines.append("wasm trap: \(trap.message)") }
        if let thrown = dump.thrown { lines += render(thrown) }
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
