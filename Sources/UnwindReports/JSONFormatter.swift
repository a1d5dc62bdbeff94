import WasmCoredumpFormat
import WasmDWARF
@_spi(Tools) import WasmUnwind

/// Reports as JSON documents, for programs (schemas in
/// docs/output-format.md). Every rendering is one complete document:
/// a run is rendered once, at its end, with its events inside (the
/// command line's `JSONSink`).
///
/// Addresses are `0x`-prefixed hexadecimal strings (JSON numbers lose
/// 64-bit precision in many readers); offsets and counts are numbers;
/// members are written in a fixed order, so output is stable and diffable.
public struct JSONFormatter: ReportFormatter {
    /// Bumped on any incompatible change of a document below.
    public static let schemaVersion = 2

    public init() {}

    public func render(_ trap: TrapReport) -> String { json(trap).rendered() }

    public func render(_ dump: DumpReport) -> String {
        JSONValue.object([
            ("schema", .string("wasm-unwind.dump")),
            ("version", .integer(Int64(Self.schemaVersion))),
            ("files", .array(dump.entries.map { entry in
                switch entry {
                case .dump(let dump): return json(dump)
                case .coredump(let report): return json(report)
                case .failure(let file, let message):
                    return .object([("file", .string(file)), ("error", .string(message))])
                }
            })),
        ]).rendered()
    }

    // MARK: Values

    /// A backtrace: whether it is complete, why not, and its frames.
    public func json(_ backtrace: SymbolicatedBacktrace, sourceSymbols: [[SourceSymbol]]? = nil) -> JSONValue {
        .object([
            ("complete", .bool(backtrace.error == nil && backtrace.truncation == nil)),
            ("truncation", backtrace.truncation.map(json) ?? .null),
            ("error", backtrace.error.map { error in
                .object([("rule", .string(error.rule)), ("message", .string(error.description))])
            } ?? .null),
            ("frames", .array(backtrace.frames.enumerated().map { index, frame in
                let value = json(frame, index: index)
                guard let sourceSymbols, case .object(let members) = value else { return value }
                let symbols = index < sourceSymbols.count ? sourceSymbols[index] : []
                return .object(members + [("symbols", .array(symbols.map(json)))])
            })),
        ])
    }

    /// One function of a frame from the module's DWARF (innermost first in
    /// a frame's `symbols`).
    public func json(_ symbol: SourceSymbol) -> JSONValue {
        .object([
            ("function", .string(symbol.name)),
            ("demangled", .string(symbol.name.map(Demangling.demangle))),
            ("file", .string(symbol.file)),
            ("line", .integer(symbol.line)),
            ("column", .integer(symbol.column)),
        ])
    }

    func json(_ truncation: Truncation) -> JSONValue {
        switch truncation {
        case .requested(let limit, let omitted):
            return .object([("reason", .string("requested")), ("limit", .integer(Int64(limit))),
                            ("omitted", .integer(omitted))])
        case .bufferFull(let capacity):
            return .object([("reason", .string("buffer-full")), ("capacity", .integer(Int64(capacity)))])
        }
    }

    /// One frame: where it is, what its code is, and the wasm location.
    public func json(_ frame: SymbolicatedFrame, index: Int) -> JSONValue {
        let symbol = frame.symbol
        let address: String
        switch frame.frame.address {
        case .programCounter: address = "pc"
        case .returnAddress: address = "return-address"
        }
        return .object([
            ("index", .integer(Int64(index))),
            ("activation", .integer(Int64(frame.frame.activation))),
            ("kind", .string(address)),
            ("address", .address(frame.frame.address.rawValue)),
            ("fp", .address(frame.frame.framePointer)),
            ("registered", .bool(symbol != nil)),
            ("code", .string(symbol?.kind?.identifier)),
            ("module", .string(symbol?.moduleName)),
            ("function_index", .integer(symbol?.functionIndex)),
            ("function_name", .string(symbol?.functionName)),
            ("demangled_name", .string(symbol?.functionName.map(Demangling.demangle))),
            ("module_offset", .integer(symbol?.moduleOffset)),
            ("function_offset", .integer(symbol?.functionOffset)),
        ])
    }

    public func json(_ trap: TrapReport) -> JSONValue {
        .object([
            ("message", .string(trap.message)),
            ("cause", .string(trap.cause)),
            ("code", .integer(trap.code)),
            ("exception", trap.exceptionPayload.map { .object([("payload", .array($0.map(JSONValue.string)))]) } ?? .null),
            ("backtrace", json(trap.backtrace, sourceSymbols: trap.sourceSymbols)),
        ])
    }

    public func json(_ root: RootReport) -> JSONValue {
        .object([
            ("frame", .integer(Int64(root.root.frameIndex))),
            ("module", .string(root.frame.symbol?.moduleName)),
            ("function_name", .string(root.frame.symbol?.functionName)),
            ("module_offset", .integer(root.frame.symbol?.moduleOffset)),
            ("slot", .address(root.root.slotAddress)),
            ("fp_offset", .integer(Int64(root.frameOffset))),
            ("value", .address(root.root.value)),
            ("object", .string(root.object)),
        ])
    }

    public func json(_ frames: [HybridFrame]) -> JSONValue {
        .array(frames.enumerated().map { index, frame in
            var members: [(String, JSONValue)] = [("index", .integer(Int64(index))), ("pc", .address(frame.pc))]
            switch frame {
            case .host(_, let name, let offset):
                members += [("kind", .string("host")), ("name", .string(name)), ("offset", .integer(Int64(offset)))]
            case .stub(_, let kind):
                members.append(("kind", .string(kind.identifier)))
            case .wasm(let wasm):
                members += [("kind", .string("wasm")), ("frame", json(wasm, index: index))]
            case .unmatchedWasm:
                members += [("kind", .string("wasm")), ("frame", .null)]
            }
            return .object(members)
        })
    }

    public func json(_ comparison: FrameComparison) -> JSONValue {
        func entry(_ entry: FrameComparison.Entry?) -> JSONValue {
            guard let entry else { return .null }
            return .object([
                ("code", .string(entry.kind.identifier)),
                ("pc", entry.pc.map(JSONValue.address) ?? .null),
                ("procedure_start", entry.procedureStart.map(JSONValue.address) ?? .null),
            ])
        }
        return .object([
            ("match", .bool(comparison.isMatch)),
            ("frames_compared", .integer(Int64(comparison.framesCompared))),
            ("rows", .array(comparison.rows.map { row in
                .object([("index", .integer(Int64(row.index))), ("matches", .bool(row.matches)),
                         ("walker", entry(row.expected)), ("libunwind", entry(row.found)),
                         ("problem", .string(row.problem))])
            })),
        ])
    }

    public func json(_ dump: CaptureDump) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("file", .string(dump.file)),
            ("architecture", .string(dump.architecture)),
            ("activations", .integer(Int64(dump.activationCount))),
            ("stack_bytes", .integer(Int64(dump.stackBytes))),
            ("modules", .integer(Int64(dump.moduleCount))),
            ("place", .string(dump.place.rawValue)),
            ("trap", dump.trap.map { .object([("code", .integer(Int64($0.code))), ("message", .string($0.message))]) } ?? .null),
            ("note", .string(dump.note)),
            ("warnings", .array(dump.warnings.map(JSONValue.string))),
            ("backtrace", json(dump.backtrace, sourceSymbols: dump.sourceSymbols)),
        ]
        if !dump.moduleDebug.isEmpty {
            members.append(("module_debug", .array(dump.moduleDebug.map { module in
                .object([
                    ("module", .string(module.module)),
                    ("build_id", .string(module.buildID)),
                    ("sha256", .string(module.contentHash)),
                    ("external_debug_info", .string(module.externalDebugInfo)),
                    ("source_lines_from", .string(module.debugSource)),
                ])
            })))
        }
        if let thrown = dump.thrown {
            let handler: JSONValue = thrown.handler.map { handler in
                .object([
                    ("frame", .integer(Int64(handler.frameIndex))),
                    ("module", .string(handler.frame.symbol?.moduleName)),
                    ("function_name", .string(handler.frame.symbol?.functionName)),
                    ("module_offset", .integer(handler.frame.symbol?.moduleOffset)),
                    ("clause", .string(handler.handler.kind.name)),
                    ("tag", handler.handler.kind.hasTag ? .integer(Int64(handler.handler.tag)) : .null),
                    ("landing_pad", .address(handler.landingPad)),
                    ("stack_pointer", .address(handler.stackPointer)),
                ])
            } ?? .null
            members.append(("thrown", .object([
                ("payload", .array(thrown.payload.map(JSONValue.string))),
                ("handler", handler),
                ("search_error", .string(thrown.searchError)),
            ])))
        }
        if let roots = dump.roots { members.append(("roots", .array(roots.map(json)))) }
        if let error = dump.rootsError { members.append(("roots_error", .string(error))) }
        if let hybrid = dump.hybrid { members.append(("hybrid", json(hybrid))) }
        if let error = dump.hybridError { members.append(("hybrid_error", .string(error))) }
        if let verification = dump.verification {
            members.append(("verification", .object([
                ("match", .bool(verification.allSatisfy(\.isMatch))),
                ("frames_compared", .integer(Int64(verification.reduce(0) { $0 + $1.framesCompared }))),
                ("activations", .array(verification.map(json))),
            ])))
        }
        if let live = dump.liveVerification {
            members.append(("live_verification", .object([
                ("match", .bool(live.isMatch)),
                ("libunwind_ptrace", .array(live.libunwind.map { .string("0x" + String($0, radix: 16)) })),
                ("walk", .array(live.walk.map { .string("0x" + String($0, radix: 16)) })),
                ("other_frames", .integer(Int64(live.otherFrames))),
            ])))
        }
        return .object(members)
    }
}
