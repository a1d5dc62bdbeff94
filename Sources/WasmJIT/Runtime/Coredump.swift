import CWasmUnwindABI
import Foundation
import WasmCoredumpFormat
import WasmUnwind
#if canImport(Glibc)
import Glibc
#endif

// Wasm coredumps taken at traps (docs/post-mortem.md#wasm-coredumps): each
// frame's locals and operand stack read through the frame layout, and the
// store's instances, memories and globals. The format — model, encoder,
// reader — is WasmCoredumpFormat.

/// A coredump taken at a trap (`Store.coredumpOnTrap`): the frames with
/// their values, the instances, globals and modules as they were, and the
/// store's memories, whose bytes `write` streams from the live memories —
/// write it before running more wasm in the store.
public struct CapturedCoredump: @unchecked Sendable {
    // @unchecked: the memories are read only by `write`, on the thread
    // that uses the store.
    /// Everything but the bytes of this store's memories (other threads'
    /// stores' memories are copied in: they may change or go once the
    /// coredump is taken).
    public var dump: WasmCoredump
    /// Per memory of `dump`: the live memory streamed by `write`, or nil
    /// when `dump` holds its bytes.
    let memories: [Memory?]
    /// The modules of `dump.modules`, in order.
    public let modules: [Module]

    /// The coredump with the memories' current bytes, trimmed as Wasmtime
    /// trims them (4 KiB chunks without their leading and trailing zeros).
    public var withMemoryBytes: WasmCoredump {
        var complete = dump
        for (index, memory) in memories.enumerated() {
            guard let memory else { continue }
            complete.memories[index].segments = Self.nonZeroChunks(memory).map { chunk in
                (UInt64(chunk.start), memory.withBytes { Array($0[chunk.start..<chunk.end]) })
            }
        }
        return complete
    }

    static let chunkSize = 4096

    static func nonZeroChunks(_ memory: Memory) -> [(start: Int, end: Int)] {
        memory.withBytes { bytes in
            var chunks: [(start: Int, end: Int)] = []
            var chunk = 0
            while chunk < bytes.count {
                let limit = min(chunk + chunkSize, bytes.count)
                var start = chunk
                while start < limit && bytes[start] == 0 { start += 1 }
                if start < limit {
                    var end = limit
                    while bytes[end - 1] == 0 { end -= 1 }
                    chunks.append((start, end))
                }
                chunk = limit
            }
            return chunks
        }
    }

    /// Writes the coredump to `path` (a partial file never has the name),
    /// each memory streamed from the live memory, never copied whole.
    public func write(to path: String) throws {
        let partial = path + ".partial-\(getpid())"
        guard FileManager.default.createFile(atPath: partial, contents: nil),
              let handle = FileHandle(forWritingAtPath: partial) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        do {
            defer { try? handle.close() }
            let sources = zip(memories, dump.memories).map { memory, image in
                guard let memory else {
                    return CoredumpEncoder.MemorySource(segments: image.segments.map { ($0.offset, $0.bytes.count) }) { index, sink in
                        try image.segments[index].bytes.withUnsafeBytes { try sink($0) }
                    }
                }
                let chunks = Self.nonZeroChunks(memory)
                return CoredumpEncoder.MemorySource(segments: chunks.map { (UInt64($0.start), $0.end - $0.start) }) { index, sink in
                    let chunk = chunks[index]
                    try memory.withBytes { bytes in try sink(UnsafeRawBufferPointer(rebasing: bytes[chunk.start..<chunk.end])) }
                }
            }
            // Out in blocks of 1 MiB or less: the handle's writes are the
            // only copies.
            try CoredumpEncoder.write(dump, memories: sources) { bytes in
                var offset = 0
                while offset < bytes.count {
                    let end = min(bytes.count, offset + (1 << 20))
                    try handle.write(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                    offset = end
                }
            }
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        guard rename(partial, path) == 0 else {
            let code = errno
            try? FileManager.default.removeItem(atPath: partial)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }
}

/// Takes coredumps of a store's traps.
struct CoredumpCapture {
    let store: Store

    /// Where a frame's slots are read: the trap's copy of the stack, or
    /// the live stack of this thread (an uncaught exception's frames are
    /// still on it when it is taken).
    enum Stack {
        case snapshot(TrapSnapshot?)
        case live

        /// The newest frame's instance context where the trap left it
        /// (r15): in a prologue the frame has not saved it yet.
        var trapContext: UInt? {
            if case .snapshot(let snapshot?) = self, let context = snapshot.registers[15], context != 0 { return context }
            return nil
        }

        func word(at address: UInt) -> UInt64? {
            switch self {
            case .snapshot(let snapshot):
                guard let snapshot, address >= snapshot.stackBase,
                      address - snapshot.stackBase + 8 <= UInt(snapshot.stack.count) else { return nil }
                let offset = Int(address - snapshot.stackBase)
                return snapshot.stack[offset..<offset + 8].enumerated()
                    .reduce(0) { $0 | UInt64($1.element) << (8 * $1.offset) }
            case .live:
                // SAFETY: only the slots of wasm frames of the backtrace
                // being taken, which are on this thread's stack while the
                // capture runs (below their activation's entry frame).
                guard address % 8 == 0, let pointer = UnsafePointer<UInt64>(bitPattern: address) else { return nil }
                return pointer.pointee
            }
        }
    }

    func take(_ backtrace: SymbolicatedBacktrace, stack: Stack, processName: String) -> CapturedCoredump {
        var parts = CoredumpParts()
        parts.add(store, copyingMemories: false)
        let frames = self.frames(of: backtrace, stack: stack) { parts.instanceIndex[$0] }
        let threadID = wu_gettid()
        var threads = [WasmCoredump.Thread(name: threadID == getpid() ? "main" : "\(threadID)", frames: frames)]
        if store.coredumpIncludesOtherThreads { threads += PeerThreads.take(into: &parts, except: store) }
        let dump = WasmCoredump(processName: processName, modules: parts.moduleNames, instances: parts.instances,
                                memories: parts.images, globals: parts.globals, threads: threads)
        return CapturedCoredump(dump: dump, memories: parts.memories, modules: parts.moduleObjects)
    }

    /// Where the newest frame of a backtrace is.
    enum Newest {
        /// At a trap (its site gives the operand stack) or, on the live
        /// stack, at the call that led to the capture.
        case trap
        /// Stopped by a signal at any instruction of its body (another
        /// thread's, for a coredump at a trap): its instance context is in
        /// r15; its values are known only at call and trap sites, so they
        /// are missing.
        case interrupted
    }

    /// The backtrace's wasm frames, newest first, with their values.
    func frames(of backtrace: SymbolicatedBacktrace, stack: Stack, newest: Newest = .trap,
                instanceIndex: (UInt) -> UInt32?) -> [WasmCoredump.Frame] {
        var frames: [WasmCoredump.Frame] = []
        for (index, symbolicated) in backtrace.frames.enumerated() {
            let frame = symbolicated.frame
            let pc = frame.address.rawValue
            guard let symbol = symbolicated.symbol, symbol.functionIndex != nil,
                  let (module, function) = compiledFunction(at: pc) else { continue }
            let fp = frame.framePointer
            // The frame's instance: the context it saved at [fp - 8], or
            // for the trapping frame the context register (r15) the trap
            // recorded — a prologue has not saved it yet.
            let saved = index == 0 && !frame.address.isReturnAddress && stack.trapContext != nil
                ? stack.trapContext : stack.word(at: fp &- 8).flatMap { UInt(exactly: $0) }
            guard let context = saved, store.withInstance(atContext: context, { $0.module === module }) == true,
                  let coreIndex = instanceIndex(context) else { continue }
            let offset = symbol.moduleOffset.map { UInt32(clamping: max(0, Int($0) - function.bodyOffset)) } ?? 0
            // The operand stack's kinds where the frame is: its call site,
            // or for the newest frame its trap site.
            let codeOffset = Int(pc - module.code.baseAddress)
            let interrupted = index == 0 && !frame.address.isReturnAddress && newest == .interrupted
            let site = index == 0 && !frame.address.isReturnAddress && !interrupted ? trapSite(in: function, at: codeOffset) : nil
            let operands: [ValueKind]?
            if frame.address.isReturnAddress {
                operands = function.callSites.first { $0.returnAddressOffset == codeOffset }?.operandKinds
            } else {
                operands = site?.operandKinds ?? nil
            }
            func value(_ kind: ValueKind, slot displacement: Int) -> WasmCoredump.Value {
                WasmCoredump.Value(slot: stack.word(at: UInt(bitPattern: Int(bitPattern: fp) &+ displacement)), type: kind.valueTypeByte)
            }
            // In a prologue (a stack-exhaustion trap) the locals are not in
            // their slots yet.
            let inPrologue = site.map { $0.operandKinds == nil } ?? false
            let locals = function.localKinds.enumerated().map { local, kind in
                inPrologue || interrupted ? .missing : value(kind, slot: -16 - 8 * local)
            }
            let values = (operands ?? []).enumerated().map { depth, kind in
                value(kind, slot: -16 - 8 * function.localKinds.count - 8 * depth)
            }
            frames.append(WasmCoredump.Frame(instance: coreIndex, function: function.index, codeOffset: offset,
                                             locals: locals, stack: values))
        }
        return frames
    }

    /// The module and compiled function whose code holds `pc`.
    func compiledFunction(at pc: UInt) -> (Module, CompiledFunction)? {
        for module in store.modules where module.code.range.contains(pc) {
            let offset = Int(pc - module.code.baseAddress)
            if let function = module.functions.first(where: { $0.codeRange.contains(offset) }) { return (module, function) }
        }
        return nil
    }

    /// The trap site at a trap's pc: a fault's instruction, or the call of
    /// a stub (whose pc is inside it).
    func trapSite(in function: CompiledFunction, at offset: Int) -> TrapSite? {
        guard let site = function.trapSites.last(where: { $0.codeOffset <= offset }), offset - site.codeOffset < 16 else { return nil }
        return site
    }
}

extension ValueKind {
    /// The wasm binary format's byte for the type.
    public var valueTypeByte: UInt8 { coredumpType.rawValue }

    /// The coredump's name for the type.
    var coredumpType: WasmCoredump.ValueType {
        switch self {
        case .i32: return .i32
        case .i64: return .i64
        case .f32: return .f32
        case .f64: return .f64
        case .funcref: return .funcref
        case .externref: return .externref
        case .exnref: return .exnref
        }
    }
}
