import Foundation

/// The coredump in the wasm binary format (tool-conventions `Coredump.md`),
/// section by section, in Wasmtime's order: `core`, memory, global, data,
/// `coremodules`, `coreinstances`, a `corestack` per thread. Memory bytes
/// are streamed from their source: a 64 MiB memory is never copied whole.
public enum CoredumpEncoder {
    /// A memory's non-zero segments, (offset, length) each, and how to
    /// hand the bytes of segment i to a sink.
    public struct MemorySource {
        public var segments: [(offset: UInt64, length: Int)]
        public var bytes: (Int, (UnsafeRawBufferPointer) throws -> Void) throws -> Void

        public init(segments: [(offset: UInt64, length: Int)],
                    bytes: @escaping (Int, (UnsafeRawBufferPointer) throws -> Void) throws -> Void) {
            self.segments = segments
            self.bytes = bytes
        }
    }

    /// The whole file in memory (the memories' segments from `dump`).
    public static func encode(_ dump: WasmCoredump) -> [UInt8] {
        var output: [UInt8] = []
        let sources = dump.memories.map { memory in
            MemorySource(segments: memory.segments.map { ($0.offset, $0.bytes.count) }) { index, sink in
                try memory.segments[index].bytes.withUnsafeBytes { try sink($0) }
            }
        }
        try? write(dump, memories: sources) { output.append(contentsOf: $0) }
        return output
    }

    /// Writes `dump` to `output`, the memories' bytes from `memories` (one
    /// per `dump.memories`).
    public static func write(_ dump: WasmCoredump, memories: [MemorySource], to output: (UnsafeRawBufferPointer) throws -> Void) throws {
        func emit(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try output($0) } }
        try emit([0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00])
        var core = Bytes()
        core.byte(0)
        core.name(dump.processName)
        try emit(custom("core", core.bytes))

        var memorySection = Bytes()
        memorySection.u32(dump.memories.count)
        for memory in dump.memories {
            if let maximum = memory.maximumPages {
                memorySection.byte(1)
                memorySection.uleb(memory.pages)
                memorySection.uleb(maximum)
            } else {
                memorySection.byte(0)
                memorySection.uleb(memory.pages)
            }
        }
        try emit(section(5, memorySection.bytes))

        var globalSection = Bytes()
        globalSection.u32(dump.globals.count)
        for global in dump.globals {
            globalSection.byte(global.type.rawValue)
            globalSection.byte(0)  // constant
            switch global.type {
            case .i32:
                globalSection.byte(0x41)
                globalSection.sleb(Int64(Int32(truncatingIfNeeded: global.bits)))
            case .i64:
                globalSection.byte(0x42)
                globalSection.sleb(Int64(bitPattern: global.bits))
            case .f32:
                globalSection.byte(0x43)
                globalSection.littleEndian(global.bits, bytes: 4)
            case .f64:
                globalSection.byte(0x44)
                globalSection.littleEndian(global.bits, bytes: 8)
            case .v128:
                globalSection.byte(0xFD)
                globalSection.uleb(12)
                globalSection.littleEndian(global.bits, bytes: 8)
                globalSection.littleEndian(0, bytes: 8)
            case .funcref, .externref, .exnref:
                globalSection.byte(0xD0)
                globalSection.byte(global.type.rawValue)
            }
            globalSection.byte(0x0B)
        }
        try emit(section(6, globalSection.bytes))

        // The data section: its size first, then each segment's header and
        // bytes, streamed.
        var headers: [[UInt8]] = []
        var dataSize = Bytes.ulebSize(UInt64(memories.reduce(0) { $0 + $1.segments.count }))
        for (index, memory) in memories.enumerated() {
            for segment in memory.segments {
                var header = Bytes()
                if index == 0 {
                    header.byte(0)
                } else {
                    header.byte(2)
                    header.u32(index)
                }
                header.byte(0x41)
                header.sleb(Int64(Int32(truncatingIfNeeded: segment.offset)))
                header.byte(0x0B)
                header.uleb(UInt64(segment.length))
                headers.append(header.bytes)
                dataSize += header.bytes.count + segment.length
            }
        }
        var dataHeader = Bytes()
        dataHeader.byte(11)
        dataHeader.uleb(UInt64(dataSize))
        dataHeader.uleb(UInt64(headers.count))
        try emit(dataHeader.bytes)
        var header = 0
        for memory in memories {
            for index in memory.segments.indices {
                try emit(headers[header])
                header += 1
                try memory.bytes(index, output)
            }
        }

        var modules = Bytes()
        modules.u32(dump.modules.count)
        for name in dump.modules {
            modules.byte(0)
            modules.name(name)
        }
        try emit(custom("coremodules", modules.bytes))

        var instances = Bytes()
        instances.u32(dump.instances.count)
        for instance in dump.instances {
            instances.byte(0)
            instances.u32(instance.module)
            instances.u32(instance.memories.count)
            for memory in instance.memories { instances.u32(memory) }
            instances.u32(instance.globals.count)
            for global in instance.globals { instances.u32(global) }
        }
        try emit(custom("coreinstances", instances.bytes))

        for thread in dump.threads {
            var stack = Bytes()
            stack.byte(0)
            stack.name(thread.name)
            stack.u32(thread.frames.count)
            for frame in thread.frames {
                stack.byte(0)
                stack.u32(frame.instance)
                stack.u32(frame.function)
                stack.u32(frame.codeOffset)
                for values in [frame.locals, frame.stack] {
                    stack.u32(values.count)
                    for value in values { stack.value(value) }
                }
            }
            try emit(custom("corestack", stack.bytes))
        }
    }

    static func section(_ id: UInt8, _ content: [UInt8]) -> [UInt8] {
        var bytes = Bytes()
        bytes.byte(id)
        bytes.uleb(UInt64(content.count))
        return bytes.bytes + content
    }

    static func custom(_ name: String, _ content: [UInt8]) -> [UInt8] {
        var body = Bytes()
        body.name(name)
        return section(0, body.bytes + content)
    }

    /// A growing byte string with the binary format's encodings.
    struct Bytes {
        var bytes: [UInt8] = []

        mutating func byte(_ value: UInt8) { bytes.append(value) }

        mutating func uleb(_ value: UInt64) {
            var rest = value
            repeat {
                let low = UInt8(rest & 0x7F)
                rest >>= 7
                bytes.append(rest == 0 ? low : low | 0x80)
            } while rest != 0
        }

        mutating func u32<T: BinaryInteger>(_ value: T) { uleb(UInt64(value)) }

        mutating func sleb(_ value: Int64) {
            var rest = value
            while true {
                let low = UInt8(truncatingIfNeeded: rest & 0x7F)
                rest >>= 7
                if (rest == 0 && low & 0x40 == 0) || (rest == -1 && low & 0x40 != 0) {
                    bytes.append(low)
                    return
                }
                bytes.append(low | 0x80)
            }
        }

        mutating func littleEndian(_ value: UInt64, bytes count: Int) {
            for index in 0..<count { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(index)))) }
        }

        mutating func name(_ text: String) {
            let utf8 = Array(text.utf8)
            uleb(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }

        mutating func value(_ value: WasmCoredump.Value) {
            switch value {
            case .missing: byte(0x01)
            case .i32(let v):
                byte(0x7F)
                sleb(Int64(v))
            case .i64(let v):
                byte(0x7E)
                sleb(v)
            case .f32(let bits):
                byte(0x7D)
                littleEndian(UInt64(bits), bytes: 4)
            case .f64(let bits):
                byte(0x7C)
                littleEndian(bits, bytes: 8)
            }
        }

        static func ulebSize(_ value: UInt64) -> Int {
            var size = 1
            var rest = value >> 7
            while rest != 0 {
                size += 1
                rest >>= 7
            }
            return size
        }
    }
}
