import WasmUnwind

/// A capture made ready to read: its modules registered, its stack bytes
/// behind a reader, and the walk the live process would have made.
public struct CapturedStack: Sendable {
    public let capture: CaptureFile
    public let registry: CodeRegistry
    public let memory: CapturedMemoryReader

    /// Registers the capture's modules; fails if their code overlaps or
    /// their tables are inconsistent.
    public init(_ capture: CaptureFile) throws(CaptureFormatError) {
        self.capture = capture
        var registry = CodeRegistry()
        for (index, module) in capture.modules.enumerated() {
            do {
                try registry.register(module.codeModule)
            } catch {
                throw CaptureFormatError(section: "MODULE", offset: 0, expected: "module \(index) to be consistent: \(error)")
            }
        }
        self.registry = registry
        memory = CapturedMemoryReader(segments: capture.stack)
    }

    /// The wasm frames of the captured stack, walked exactly as the live
    /// walker walks a live one (same walker, captured memory).
    public func backtrace(limits: WalkLimits = .default) -> Backtrace {
        let activations = capture.activations.map(\.bounds)
        switch capture.architecture {
        case .x86_64:
            return Backtrace(walking: FramePointerWalker(
                architecture: X86_64.self, reader: memory, activations: activations.makeIterator(), limits: limits))
        case .aarch64:
            return Backtrace(walking: FramePointerWalker(
                architecture: AArch64.self, reader: memory, activations: activations.makeIterator(), limits: limits))
        }
    }

    /// The backtrace with module, function and offsets.
    public func symbolicated(limits: WalkLimits = .default) -> SymbolicatedBacktrace {
        registry.symbolicate(backtrace(limits: limits))
    }

    /// The GC roots of the captured frames, from the captured stack maps.
    public func roots(of backtrace: Backtrace) throws(RootEnumerationError) -> [GCRoot] {
        try registry.roots(of: backtrace.frames, reader: memory)
    }

    /// What a code address is, in the captured modules.
    public func trampolineKind(at address: UInt) -> CaptureFile.Trampoline.Kind? {
        for module in capture.modules where module.codeRange.contains(address) {
            let offset = address - module.codeBase
            return module.trampolines.first { $0.codeRange.contains(offset) }?.kind
        }
        return nil
    }

    /// Total bytes of captured stack.
    public var stackBytes: Int { capture.stack.reduce(0) { $0 + $1.bytes.count } }
}

// MARK: - Rendering

extension CapturedStack {
    /// A one-line summary: activations, where it was taken, how much stack.
    public var summary: String {
        let count = capture.activations.count
        let place = capture.trap == nil ? "at a host call" : "at a trap"
        return "\(count) activation\(count == 1 ? "" : "s"), captured \(place); \(stackBytes) bytes of stack, "
            + "\(capture.modules.count) module\(capture.modules.count == 1 ? "" : "s")"
            + (capture.note.map { " (\($0))" } ?? "")
    }

    /// The dump of `wasm-unwind dump` as text: the summary, the frames in
    /// Wasmtime's layout with activation boundaries marked, and, with
    /// `roots`, each root.
    public func text(roots: [GCRoot]? = nil, rootError: RootEnumerationError? = nil) -> String {
        let trace = symbolicated()
        var lines = [summary, trace.text(activationBoundaries: true)]
        if let trap = capture.trap { lines.append("wasm trap: \(trap.message)") }
        if let roots {
            lines.append("gc roots: \(roots.count)")
            for root in roots {
                let frame = SymbolicatedBacktrace.line(index: root.frameIndex, frame: registry.symbolicate(root.frame))
                let slot = Int(bitPattern: root.slotAddress) - Int(bitPattern: root.frame.framePointer)
                lines.append("\(frame)    fp\(slot) = \(hex(root.value))")
            }
        }
        if let rootError { lines.append("gc roots: \(rootError)") }
        return lines.joined(separator: "\n")
    }

    /// The dump as JSON (schema `wasm-unwind.capture-dump`, docs/capture-format.md).
    public func json(file: String, roots: [GCRoot]? = nil, rootError: RootEnumerationError? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("schema", .string("wasm-unwind.capture-dump")),
            ("version", .integer(1)),
            ("file", .string(file)),
            ("architecture", .string(capture.architecture == .x86_64 ? "x86_64" : "aarch64")),
            ("activations", .integer(Int64(capture.activations.count))),
            ("stack_bytes", .integer(Int64(stackBytes))),
            ("trap", capture.trap.map { .object([("code", .integer(Int64($0.code))), ("message", .string($0.message))]) } ?? .null),
            ("note", .string(capture.note)),
            ("backtrace", symbolicated().json),
        ]
        if let roots {
            members.append(("roots", .array(roots.map { root in
                .object([("frame", .integer(Int64(root.frameIndex))), ("slot", .address(root.slotAddress)),
                         ("fp_offset", .integer(Int64(Int(bitPattern: root.slotAddress) - Int(bitPattern: root.frame.framePointer)))),
                         ("value", .address(root.value))])
            })))
        }
        if let rootError {
            members.append(("roots_error", .string(rootError.description)))
        }
        return .object(members)
    }
}
