import WasmDWARF
@_spi(Tools) import WasmUnwind

/// Reports as people read them: frames in Wasmtime's layout (the library's
/// `SymbolicatedBacktrace.rendered`), traps as Wasmtime displays them, and
/// the dumps, roots, hybrid backtraces and comparisons around them.
public struct TextFormatter: ReportFormatter {
    /// Runs of at least this many identical frames print as one line.
    public var foldingThreshold: Int

    public init(foldingThreshold: Int = 10) {
        self.foldingThreshold = foldingThreshold
    }

    // MARK: Backtraces

    /// The frames in Wasmtime's layout (`SymbolicatedBacktrace.rendered`),
    /// runs of `foldingThreshold` identical frames folded; with
    /// `activationBoundaries`, a line where the host frames between two
    /// activations were skipped.
    public func render(_ backtrace: SymbolicatedBacktrace, activationBoundaries: Bool = false) -> String {
        backtrace.rendered(foldingThreshold: foldingThreshold, activationBoundaries: activationBoundaries)
    }

    /// `module!function` (`FrameSymbol.printedName`).
    public static func name(of symbol: FrameSymbol) -> String { symbol.printedName }

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
        if let symbols = trap.sourceSymbols {
            out.append(renderDetails(trap.backtrace, symbols))
        } else {
            out.append(render(trap.backtrace))
        }
        out.append("\n")
        if trap.detailsHint {
            out.append("note: using the `WASMTIME_BACKTRACE_DETAILS=1` environment variable may show more debugging information\n")
        }
        if let cause = trap.cause {
            out.append(cause)
            out.append("\n")
        }
        out.append(trap.message)
        return out
    }

    /// A backtrace with source lines, as Wasmtime prints it with
    /// `WASMTIME_BACKTRACE_DETAILS=1`: each frame's functions from the
    /// innermost inlined one out, demangled, without the module's name,
    /// each with its `at FILE:LINE:COLUMN`:
    ///
    /// ```
    ///     0:     0x4b - leaf
    ///                     at /src/t.c:1:37
    ///                 - mid
    ///                     at /src/t.c:2:51
    /// ```
    ///
    /// A frame the DWARF says nothing about prints as without details.
    /// Runs of identical frames are folded, activation boundaries marked
    /// and a truncated or broken trace ended as in `render(_:)`.
    public func renderDetails(_ backtrace: SymbolicatedBacktrace, _ symbols: [[SourceSymbol]], foldingThreshold: Int = 10,
                              activationBoundaries: Bool = false) -> String {
        var lines: [String] = []
        let frames = backtrace.frames
        var activation = frames.first?.frame.activation ?? 0
        var rendered: [SymbolsKey: [String]] = [:]
        /// One frame's lines; `run`, when it stands for a folded run of
        /// identical frames, numbers it `first-last` and counts them.
        func append(_ index: Int, run: Range<Int>?) {
            var line = frames[index].line(index: index)
            if let run {
                line = String(line.prefix { $0 == " " }) + "\(run.lowerBound)-\(run.upperBound - 1):"
                    + line.drop { $0 == " " }.drop { $0 != ":" }.dropFirst()
            }
            let frameSymbols = index < symbols.count ? symbols[index] : []
            guard let dash = Self.afterDash(line), !frameSymbols.isEmpty else {
                lines.append(line + (run.map { " (\($0.count) times)" } ?? ""))
                return
            }
            let head = String(line[..<dash])
            // The lines under the head are the same for every frame with the
            // same symbols (a recursion): made once per trap.
            let key = SymbolsKey(symbols: frameSymbols, raw: frameSymbols.first?.name == nil ? Self.rawFunctionName(frames[index].symbol) : nil)
            let body: [String]
            if let known = rendered[key] {
                body = known
            } else {
                var made: [String] = []
                for (position, symbol) in frameSymbols.enumerated() {
                    let name = symbol.name.map(Demangling.demangle)
                        ?? (position == 0 ? key.raw ?? "<wasm function ?>" : "<inlined function>")
                    made.append(position == 0 ? name : "                - " + name)
                    if let file = symbol.file {
                        var at = "                    at " + file
                        // Wasmtime prints an unknown column of a known line as 0.
                        if let line = symbol.line { at += ":\(line):\(symbol.column ?? 0)" }
                        made.append(at)
                    }
                }
                rendered[key] = made
                body = made
            }
            lines.append(head + body[0])
            lines.append(contentsOf: body.dropFirst())
            if let run { lines[lines.count - 1] += " (\(run.count) times)" }
        }
        var index = 0
        while index < frames.count {
            if activationBoundaries, frames[index].frame.activation != activation {
                activation = frames[index].frame.activation
                lines.append("       -- host frames; activation \(activation) --")
            }
            // A run of identical frames: one activation, same code and offset.
            var end = index + 1
            while end < frames.count, frames[end].frame.activation == frames[index].frame.activation,
                  frames[end].symbol != nil, frames[end].symbol == frames[index].symbol,
                  frames[end].symbol?.moduleOffset == frames[index].symbol?.moduleOffset { end += 1 }
            if end - index >= foldingThreshold {
                append(index, run: index..<end)
            } else {
                for at in index..<end { append(at, run: nil) }
            }
            index = end
        }
        let trailer = backtrace.renderedTrailer
        if !trailer.isEmpty { lines.append(trailer) }
        return lines.joined(separator: "\n")
    }

    /// A frame's symbols, and its raw name when the DWARF has none.
    private struct SymbolsKey: Hashable {
        var symbols: [SourceSymbol]
        var raw: String?
    }

    /// Where the name starts in a frame's line: after the first " - ".
    static func afterDash(_ line: String) -> String.Index? {
        // A plain scan of the bytes (the generic `firstRange(of:)` cost
        // more than the rest of a 10-frame trap).
        let utf8 = line.utf8
        var index = utf8.startIndex
        var before: UInt8 = 0, last: UInt8 = 0
        while index < utf8.endIndex {
            let byte = utf8[index]
            index = utf8.index(after: index)
            if before == UInt8(ascii: " ") && last == UInt8(ascii: "-") && byte == UInt8(ascii: " ") { return index }
            before = last
            last = byte
        }
        return nil
    }

    /// A frame's function as Wasmtime names it when its DWARF has no name:
    /// its name section name, demangled, or `<wasm function N>`.
    static func rawFunctionName(_ symbol: FrameSymbol?) -> String {
        if let name = symbol?.functionName { return Demangling.demangle(name) }
        return "<wasm function \(symbol?.functionIndex.map(String.init) ?? "?")>"
    }

    /// `thrown Wasm exception (payload: i32 42)`, then where the handler
    /// search stops:
    ///
    /// ```
    /// handler: frame 2 (exceptions!catcher @ 0x55): catch tag 0 -> +0x16f (values at fp-24); resumes with sp 0x7ffe... at 0x7f9c...
    /// ```
    public func render(_ thrown: ThrowReport) -> [String] {
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

    /// A root: its frame's line, then the slot and the reference.
    public func render(_ root: RootReport) -> String {
        root.frame.line(index: root.root.frameIndex) + "    fp\(root.frameOffset) = \(hex(root.root.value))"
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
                lines.append(prefix + "wasm   " + wasm.description.drop { $0 == " " })
            case .unmatchedWasm:
                lines.append(prefix + "wasm   (the walk has no frame here)")
            }
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Dumps

    public func render(_ dump: DumpReport) -> String {
        dump.entries.map { entry in
            switch entry {
            case .dump(let dump): return render(dump)
            case .coredump(let report): return render(report)
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
        let frames = dump.sourceSymbols.map { renderDetails(dump.backtrace, $0, foldingThreshold: foldingThreshold, activationBoundaries: true) }
            ?? render(dump.backtrace, activationBoundaries: true)
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
        if let live = dump.liveVerification { lines.append(render(live)) }
        return lines.joined(separator: "\n")
    }

    /// `verify (live): ...`: libunwind-ptrace over the stopped thread.
    public func render(_ live: LiveVerification) -> String {
        func list(_ addresses: [UInt]) -> String { addresses.map { "0x" + String($0, radix: 16) }.joined(separator: " ") }
        if live.isMatch {
            return "verify (live): libunwind-ptrace, unwinding the stopped thread through \(live.otherFrames) host and trampoline frames, "
                + "agrees on all \(live.walk.count) wasm frames in \(live.activations) activation\(live.activations == 1 ? "" : "s")"
        }
        return "verify (live): libunwind-ptrace disagrees: its wasm frames \(list(live.libunwind)), the walk's \(list(live.walk))"
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
