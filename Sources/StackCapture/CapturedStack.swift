import WasmUnwind
import UnwindReports

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
        func walk<Architecture: FrameArchitecture>(_ architecture: Architecture.Type) -> Backtrace {
            Backtrace(walking: FramePointerWalker(
                architecture: architecture, reader: memory, activations: activations.makeIterator(), limits: limits))
        }
        return walk(capture.architecture.frame)
    }

    /// The backtrace with module, function and offsets.
    public func symbolicated(limits: WalkLimits = .default) -> SymbolicatedBacktrace {
        registry.symbolicate(backtrace(limits: limits))
    }

    /// The GC roots of the captured frames, from the captured stack maps.
    public func roots(of backtrace: Backtrace) throws(RootEnumerationError) -> [GCRoot] {
        try registry.roots(of: backtrace.frames, reader: memory)
    }

    /// The handler search of the throw the capture was taken at, on the
    /// captured stack: the same walker and the same call-site records as
    /// the live throw, the tags matched by the capture's list of which tag
    /// indices of each module are the thrown tag.
    public func handler(for thrown: CaptureFile.Thrown) throws(HandlerSearchError) -> HandlerMatch? {
        let tagsByBase = Dictionary(zip(capture.modules.map(\.codeBase), thrown.tags.map(Set.init)),
                                    uniquingKeysWith: { first, _ in first })
        func takes(_ handler: ExceptionHandler, _ frame: Frame) -> Bool {
            guard handler.kind.hasTag else { return true }
            guard let module = registry.module(containing: frame.address.rawValue &- 1) else { return false }
            return tagsByBase[module.codeRange.lowerBound]?.contains(handler.tag) ?? false
        }
        let activations = capture.activations.map(\.bounds)
        func search<Architecture: FrameArchitecture>(_ architecture: Architecture.Type) throws(HandlerSearchError) -> HandlerMatch? {
            var walker = FramePointerWalker(architecture: architecture, reader: memory, activations: activations.makeIterator())
            return try registry.findHandler(walking: &walker, takes: takes)
        }
        return try search(capture.architecture.frame)
    }

    /// Total bytes of captured stack.
    public var stackBytes: Int { capture.stack.reduce(0) { $0 + $1.bytes.count } }

    /// The dump of `wasm-unwind dump`: where and how the capture was taken,
    /// its backtrace, and with `roots`, the roots of its frames.
    public func dump(file: String, backtrace: Backtrace, roots: Bool = false, warnings: [String] = []) -> CaptureDump {
        var dump = CaptureDump(
            file: file, architecture: capture.architecture.name, activationCount: capture.activations.count,
            stackBytes: stackBytes, moduleCount: capture.modules.count, place: capture.trap == nil ? .hostCall : .trap,
            note: capture.note, backtrace: registry.symbolicate(backtrace), warnings: warnings)
        dump.trap = capture.trap
        if let thrown = capture.thrown {
            dump.place = .throw
            do {
                dump.thrown = ThrowReport(payload: thrown.payload, handler: try handler(for: thrown).map { match in
                    HandlerReport(match: match, frame: registry.symbolicate(match.frame))
                })
            } catch {
                dump.thrown = ThrowReport(payload: thrown.payload, handler: nil, searchError: error.description)
            }
        }
        if roots {
            do {
                dump.roots = try self.roots(of: backtrace).map { root in
                    RootReport(root: root, frame: registry.symbolicate(root.frame))
                }
            } catch {
                dump.rootsError = error.description
            }
        }
        return dump
    }

    /// The captured host frames with the walk's wasm frames in their places
    /// (a capture taken at `host.backtrace_all` keeps them), or nil.
    public func hybridFrames(backtrace: Backtrace) -> [HybridFrame]? {
        guard let frames = capture.hostFrames else { return nil }
        var wasm = backtrace.frames.makeIterator()
        return frames.map { frame in
            switch frame.kind {
            case nil:
                return .host(pc: frame.pc, name: frame.name.isEmpty ? nil : frame.name, offset: frame.offset)
            case .wasmFunction?:
                guard let ours = wasm.next(), ours.address.rawValue == frame.pc else {
                    return .unmatchedWasm(pc: frame.pc)
                }
                return .wasm(registry.symbolicate(ours))
            case let kind?:
                return .stub(pc: frame.pc, kind: kind)
            }
        }
    }
}
