/// Backtraces as people read them: frames in Wasmtime's layout.
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
extension SymbolicatedBacktrace: CustomStringConvertible {
    /// The frames in Wasmtime's layout, runs of 10 or more folded.
    public var description: String { rendered() }

    /// The frames, one line per frame or run of at least `foldingThreshold`
    /// identical frames; with `activationBoundaries`, a line marks where the
    /// host frames between two activations were skipped. A truncated trace
    /// ends with a line saying why; an incomplete one with the error that
    /// stopped the walk.
    public func rendered(foldingThreshold: Int = 10, activationBoundaries: Bool = false) -> String {
        // One byte buffer, appended to: a line is a few appends, no
        // temporaries; made a string once. Frames are read in place, by
        // index into the snapshot: no reference is counted per line.
        var out = TextBuffer(capacity: min(resolved.count, 64) * 48)
        withExtendedLifetime(snapshot) {
            resolved.withUnsafeBufferPointer { frames in
                appendFrames(frames, foldingThreshold: foldingThreshold, activationBoundaries: activationBoundaries,
                             to: &out)
            }
        }
        appendTrailer(to: &out)
        return out.string
    }

    /// The lines a rendering ends with: why a truncated trace is
    /// truncated, the error that stopped an incomplete walk; empty for a
    /// whole trace. For renderings of the frames made elsewhere (with
    /// source lines).
    @_spi(Tools) public var renderedTrailer: String {
        var out = TextBuffer(capacity: 0)
        appendTrailer(to: &out)
        return out.string
    }

    private func appendTrailer(to out: inout TextBuffer) {
        let count = resolved.count
        switch truncation {
        case .requested(_, let omitted?)?:
            out.appendLine("       ... (backtrace truncated after \(grouped(count)) frames; \(grouped(omitted)) more not shown)")
        case .requested?:
            out.appendLine("       ... (backtrace truncated after \(grouped(count)) frames)")
        case .bufferFull(let capacity)?:
            out.appendLine("       ... older frames not recorded: a trap records only the newest \(grouped(capacity)) frames")
        case nil:
            break
        }
        if let error {
            out.appendLine("backtrace incomplete after \(count) frames: \(error) [\(error.rule)]")
        }
    }

    private func appendFrames(_ frames: UnsafeBufferPointer<ResolvedFrame>, foldingThreshold: Int,
                              activationBoundaries: Bool, to out: inout TextBuffer) {
        var activation = frames.first?.frame.activation ?? 0
        var index = 0
        while index < frames.count {
            if activationBoundaries, frames[index].frame.activation != activation {
                activation = frames[index].frame.activation
                out.appendLine("       -- host frames; activation \(activation) --")
            }
            var end = index &+ 1
            while end < frames.count, sameCode(frames[index], frames[end]) { end &+= 1 }
            if end - index >= foldingThreshold {
                out.startLine()
                // The first index right-aligned in five columns, as a line's.
                out.appendDecimal(index, width: 5)
                out.append("-\(end - 1)")
                out.append(UInt8(ascii: ":"))
                out.append(UInt8(ascii: " "))
                appendDescription(frames[index], to: &out)
                out.append(" (\(grouped(end - index)) times)")
            } else {
                // A run too short to fold: every line of it.
                for line in index..<end {
                    out.startLine()
                    out.appendDecimal(line, width: 5)
                    out.append(UInt8(ascii: ":"))
                    out.append(UInt8(ascii: " "))
                    appendDescription(frames[line], to: &out)
                }
            }
            index = end
        }
    }

    /// Whether two frames print the same (a run to fold): in one activation,
    /// the same code of one registered module, or the same text from two
    /// registrations.
    @inline(__always)
    private func sameCode(_ a: ResolvedFrame, _ b: ResolvedFrame) -> Bool {
        guard a.frame.activation == b.frame.activation, a.module >= 0, b.module >= 0,
              a.wasmOffset == b.wasmOffset, a.hasCode, b.hasCode else { return false }
        if a.module == b.module { return a.function == b.function && a.stub == b.stub }
        // SAFETY: the backtrace holds `snapshot`, which keeps both records.
        return snapshot.unretained[Int(a.module)]._withUnsafeGuaranteedRef { first in
            snapshot.unretained[Int(b.module)]._withUnsafeGuaranteedRef { second in
                first.displayName(function: a.function, stub: a.stub)
                    .elementsEqual(second.displayName(function: b.function, stub: b.stub))
            }
        }
    }

    /// `0x26 - hello_mod!hello`, the offset padded as Wasmtime pads it.
    func appendDescription(_ frame: ResolvedFrame, to out: inout TextBuffer) {
        guard frame.module >= 0 else {
            out.append("<unregistered code at \(hex(frame.frame.address.rawValue))>")
            return
        }
        if frame.wasmOffset != AddressMapEntry.noWasmOffset {
            // `{offset:#8x} - `.
            out.appendHex(UInt64(frame.wasmOffset), width: 8)
            out.append(UInt8(ascii: " "))
            out.append(UInt8(ascii: "-"))
            out.append(UInt8(ascii: " "))
        }
        // SAFETY: the backtrace holds `snapshot`, which keeps the record.
        snapshot.unretained[Int(frame.module)]._withUnsafeGuaranteedRef { record in
            if frame.hasCode {
                out.append(record.displayName(function: frame.function, stub: frame.stub))
            } else {
                out.append(record.moduleName ?? "<unknown>")
                out.append("!<no code>")
            }
        }
    }
}

extension SymbolicatedFrame: CustomStringConvertible {
    /// `0x26 - hello_mod!hello`: the wasm offset as Wasmtime pads it (none
    /// for code of no wasm instruction) and the printed name.
    public var description: String {
        var out = TextBuffer()
        appendDescription(to: &out)
        return out.string
    }

    /// `    7:     0x26 - hello_mod!hello`: the frame as line `index` of a
    /// backtrace, the index right-aligned in five columns.
    public func line(index: Int) -> String {
        var out = TextBuffer()
        out.appendDecimal(index, width: 5)
        out.append(UInt8(ascii: ":"))
        out.append(UInt8(ascii: " "))
        appendDescription(to: &out)
        return out.string
    }

    private func appendDescription(to out: inout TextBuffer) {
        guard let symbol else {
            out.append("<unregistered code at \(hex(frame.address.rawValue))>")
            return
        }
        if let offset = symbol.moduleOffset {
            out.appendHex(UInt64(offset), width: 8)
            out.append(" - ")
        }
        out.append(symbol.printedName)
    }
}

extension ResolvedFrame {
    /// Whether the frame is in a function or a stub (not in padding).
    @inline(__always)
    var hasCode: Bool { function >= 0 || stub >= 0 }
}

extension TextBuffer {
    /// Starts a new line unless nothing has been written yet.
    @inline(__always)
    mutating func startLine() {
        if !isEmpty { append(UInt8(ascii: "\n")) }
    }

    /// `text` on a line of its own.
    mutating func appendLine(_ text: String) {
        startLine()
        append(text)
    }
}

/// `16,324`.
func grouped(_ number: Int) -> String {
    let digits = String(number.magnitude)
    var out = number < 0 ? "-" : ""
    for (position, digit) in digits.enumerated() {
        if position > 0, (digits.count - position) % 3 == 0 { out.append(",") }
        out.append(digit)
    }
    return out
}
