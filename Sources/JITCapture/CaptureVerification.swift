import StackCapture
import UnwindOracle
import WasmUnwind

/// A captured stack unwound offline by libunwind, compared with the walk
/// of the same capture, activation by activation.
public struct CaptureVerification: Sendable {
    /// One comparison per activation, newest first.
    public var activations: [OracleComparison]
    public var framesCompared: Int { activations.reduce(0) { $0 + $1.wasmFramesCompared } }
    public var isMatch: Bool { activations.allSatisfy(\.isMatch) }

    /// For each activation: libunwind starts at the activation's recorded
    /// registers (the capture's registers for the newest), reads memory from
    /// the captured bytes and CFI from the captured tables, and steps until
    /// it leaves JIT code; its frames must be the walk's wasm frames of that
    /// activation, pc for pc, then the entry trampoline.
    public init(_ stack: CapturedStack) {
        let capture = stack.capture
        let walk = stack.backtrace()
        var segments = capture.stack.map { RemoteUnwinder.Segment(baseAddress: $0.baseAddress, bytes: $0.bytes) }
        var tables: [RemoteUnwinder.CodeTable] = []
        for module in capture.modules {
            segments.append(.init(baseAddress: module.ehFrame.baseAddress, bytes: module.ehFrame.bytes))
            segments.append(.init(baseAddress: module.searchTable.baseAddress, bytes: module.searchTable.bytes))
            tables.append(RemoteUnwinder.CodeTable(
                codeRange: module.codeBase..<module.ehFrame.baseAddress, segmentBase: module.codeBase,
                searchTable: module.searchTable.baseAddress, entries: module.searchTable.bytes.count / 8))
        }
        let kind = Self.classifier(capture)
        activations = capture.activations.enumerated().map { index, activation in
            var registers: [UInt8: UInt] = [16: activation.start.rawValue, 6: activation.startFramePointer,
                                             7: activation.startStackPointer]
            if index == 0, !capture.registers.isEmpty { registers = capture.registers }
            let frames = RemoteUnwinder.unwind(registers: registers, segments: segments, tables: tables)
            // Past the entry trampoline lies host code with no CFI here;
            // whatever libunwind guesses there is not compared.
            let inJIT = Array(frames.enumerated().prefix { position, frame in
                kind(position == 0 ? frame.ip : frame.ip &- 1) != nil
            }.map(\.element))
            let ours = walk.frames.filter { $0.activation == index }.map { frame in
                Frame(address: frame.address, framePointer: frame.framePointer, activation: 0)
            }
            return OracleComparison(libunwind: inJIT, walk: ours, trapped: true, kind: kind)
        }
    }

    static func classifier(_ capture: CaptureFile) -> (UInt) -> JITCodeKind? {
        { address in
            for module in capture.modules where module.codeRange.contains(address) {
                let offset = address - module.codeBase
                if let trampoline = module.trampolines.first(where: { $0.codeRange.contains(offset) }) {
                    return trampoline.kind == .entry ? .entryTrampoline : .exitTrampoline
                }
                if module.functions.contains(where: { $0.codeRange.contains(offset) }) { return .wasmFunction }
            }
            return nil
        }
    }
}
