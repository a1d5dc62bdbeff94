/// What is wrong with a coredump (or a module read beside one): where and
/// what.
public struct CoredumpError: Error, CustomStringConvertible, Sendable {
    /// Byte offset in the file, when one place is wrong.
    public var offset: Int?
    public var problem: String

    public init(offset: Int?, problem: String) {
        self.offset = offset
        self.problem = problem
    }

    public var description: String { offset.map { "at offset \($0): \(problem)" } ?? problem }
}

/// Reads the wasm binary format's primitives, every read bounds-checked.
struct BinaryReader {
    let bytes: [UInt8]
    var position: Int
    /// Where the current section (or the file) ends.
    var end: Int

    init(_ bytes: [UInt8], position: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        self.position = position
        self.end = end ?? bytes.count
    }

    var atEnd: Bool { position >= end }

    func error(_ problem: String, at offset: Int? = nil) -> CoredumpError {
        CoredumpError(offset: offset ?? position, problem: problem)
    }

    mutating func byte(_ what: String) throws(CoredumpError) -> UInt8 {
        guard position < end else { throw error("\(what) runs past the end of its section") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func bytes(_ count: Int, _ what: String) throws(CoredumpError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= end - position else {
            throw error("\(what) of \(count) bytes runs past the end of its section (\(end - position) left)")
        }
        defer { position += count }
        return bytes[position..<position + count]
    }

    mutating func uleb(_ what: String, bits: Int = 32) throws(CoredumpError) -> UInt64 {
        let start = position
        var result: UInt64 = 0
        var shift = 0
        while true {
            let byte = try self.byte(what)
            guard shift < bits else { throw error("\(what) is a LEB128 longer than \(bits) bits", at: start) }
            let payload = UInt64(byte & 0x7F)
            guard shift + 7 <= bits || payload >> UInt64(bits - shift) == 0 else {
                throw error("\(what) does not fit \(bits) bits", at: start)
            }
            result |= payload << UInt64(shift)
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func u32(_ what: String) throws(CoredumpError) -> UInt32 { UInt32(try uleb(what)) }

    /// A count of entries each at least `minimumSize` bytes: more than the
    /// section can hold is an error, not an allocation.
    mutating func count(_ what: String, minimumSize: Int = 1) throws(CoredumpError) -> Int {
        let start = position
        let count = Int(try uleb("the count of \(what)"))
        guard count <= (end - position) / max(1, minimumSize) else {
            throw error("\(count) \(what) cannot fit the \(end - position) bytes left in the section", at: start)
        }
        return count
    }

    mutating func sleb(_ what: String, bits: Int) throws(CoredumpError) -> Int64 {
        let start = position
        var result: Int64 = 0
        var shift = 0
        var byte: UInt8
        repeat {
            byte = try self.byte(what)
            guard shift < bits + 7 else { throw error("\(what) is a LEB128 longer than \(bits) bits", at: start) }
            result |= Int64(byte & 0x7F) << Int64(min(shift, 63))
            shift += 7
        } while byte & 0x80 != 0
        if shift < 64 && byte & 0x40 != 0 { result |= -1 << Int64(shift) }
        if bits == 32 { return Int64(Int32(truncatingIfNeeded: result)) }
        return result
    }

    mutating func littleEndian(_ count: Int, _ what: String) throws(CoredumpError) -> UInt64 {
        try bytes(count, what).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func name(_ what: String) throws(CoredumpError) -> String {
        let length = Int(try uleb("the length of \(what)"))
        let start = position
        let raw = try bytes(length, what)
        guard let text = String(validating: raw, as: UTF8.self) else { throw error("\(what) is not UTF-8", at: start) }
        return text
    }
}

extension WasmCoredump {
    /// Reads a coredump: any producer's that follows the format. Every
    /// read is bounds-checked and every count bounded by the bytes left;
    /// a malformed file is an error naming the offset and the field.
    public init(parsing bytes: [UInt8]) throws(CoredumpError) {
        guard bytes.count >= 8, bytes[0..<4] == [0x00, 0x61, 0x73, 0x6D] else {
            throw CoredumpError(offset: 0, problem: "not a wasm file (no \\0asm magic)")
        }
        guard bytes[4..<8] == [0x01, 0x00, 0x00, 0x00] else {
            throw CoredumpError(offset: 4, problem: "wasm version \(bytes[4..<8].map(String.init).joined(separator: " ")), not 1 (a component?)")
        }
        var reader = BinaryReader(bytes, position: 8)
        var processName: String?
        var modules: [String] = []
        var instances: [Instance] = []
        var memories: [MemoryImage] = []
        var globals: [Global] = []
        var threads: [Thread] = []
        var seen: Set<String> = []
        while !reader.atEnd {
            let sectionStart = reader.position
            let id = try reader.byte("a section id")
            let size = Int(try reader.uleb("the size of section \(id)"))
            guard size <= bytes.count - reader.position else {
                throw CoredumpError(offset: sectionStart, problem: "section \(id) of \(size) bytes runs past the end of the file")
            }
            var section = BinaryReader(bytes, position: reader.position, end: reader.position + size)
            reader.position += size
            switch id {
            case 0:
                let name = try section.name("a custom section's name")
                guard ["core", "coremodules", "coreinstances"].contains(name) || name == "corestack" else { continue }
                if name != "corestack" {
                    guard !seen.contains(name) else {
                        throw CoredumpError(offset: sectionStart, problem: "a second `\(name)` section (it must appear once)")
                    }
                    seen.insert(name)
                }
                switch name {
                case "core":
                    guard try section.byte("the process info's kind") == 0 else {
                        throw section.error("the `core` section's kind is not 0x00 (process info)", at: section.position - 1)
                    }
                    processName = try section.name("the executable's name")
                case "coremodules":
                    for _ in 0..<(try section.count("modules", minimumSize: 2)) {
                        guard try section.byte("a module's kind") == 0 else {
                            throw section.error("a `coremodules` entry's kind is not 0x00", at: section.position - 1)
                        }
                        modules.append(try section.name("a module's name"))
                    }
                case "coreinstances":
                    for _ in 0..<(try section.count("instances", minimumSize: 4)) {
                        guard try section.byte("an instance's kind") == 0 else {
                            throw section.error("a `coreinstances` entry's kind is not 0x00", at: section.position - 1)
                        }
                        let module = try section.u32("an instance's module index")
                        var memories: [UInt32] = []
                        for _ in 0..<(try section.count("an instance's memories")) { memories.append(try section.u32("a memory index")) }
                        var globals: [UInt32] = []
                        for _ in 0..<(try section.count("an instance's globals")) { globals.append(try section.u32("a global index")) }
                        instances.append(Instance(module: module, memories: memories, globals: globals))
                    }
                default:
                    threads.append(try Self.thread(&section))
                }
                guard section.atEnd else {
                    throw section.error("\(section.end - section.position) bytes left over at the end of `\(name)`")
                }
            case 5:
                for _ in 0..<(try section.count("memories", minimumSize: 2)) {
                    let flags = try section.byte("a memory's limits")
                    guard flags & ~0x05 == 0 else {
                        throw section.error("memory limits flags 0x\(String(flags, radix: 16)) (shared or custom-page memories are not read)",
                                            at: section.position - 1)
                    }
                    let bits = flags & 4 != 0 ? 64 : 32
                    let pages = try section.uleb("a memory's size", bits: bits)
                    let maximum = flags & 1 != 0 ? try section.uleb("a memory's maximum", bits: bits) : nil
                    memories.append(MemoryImage(pages: pages, maximumPages: maximum, segments: []))
                }
            case 6:
                for _ in 0..<(try section.count("globals", minimumSize: 4)) {
                    globals.append(try Self.global(&section))
                }
            case 11:
                for _ in 0..<(try section.count("data segments", minimumSize: 3)) {
                    let flagsOffset = section.position
                    let flags = try section.uleb("a data segment's flags")
                    let memory: Int
                    switch flags {
                    case 0: memory = 0
                    case 2: memory = Int(try section.u32("a data segment's memory index"))
                    case 1:
                        _ = try section.bytes(Int(try section.uleb("a passive segment's length")), "a passive segment")
                        continue
                    default: throw section.error("data segment flags \(flags)", at: flagsOffset)
                    }
                    let offset = try Self.constantOffset(&section)
                    let length = Int(try section.uleb("a data segment's length"))
                    let data = Array(try section.bytes(length, "a data segment"))
                    guard memory < memories.count else {
                        throw section.error("a data segment of memory \(memory), but the coredump has \(memories.count)", at: flagsOffset)
                    }
                    let pageBytes = memories[memory].pages.multipliedReportingOverflow(by: 65536)
                    guard !pageBytes.overflow, offset <= pageBytes.partialValue,
                          UInt64(length) <= pageBytes.partialValue - offset else {
                        throw section.error("a data segment at 0x\(String(offset, radix: 16)) of \(length) bytes lies outside memory \(memory)",
                                            at: flagsOffset)
                    }
                    memories[memory].segments.append((offset, data))
                }
            default:
                continue
            }
        }
        guard let processName else {
            throw CoredumpError(offset: nil, problem: "not a wasm coredump: no `core` custom section")
        }
        // Every index names something that is there.
        for (index, instance) in instances.enumerated() {
            guard Int(instance.module) < modules.count else {
                throw CoredumpError(offset: nil, problem: "instance \(index) names module \(instance.module); `coremodules` has \(modules.count)")
            }
            if let bad = instance.memories.first(where: { Int($0) >= memories.count }) {
                throw CoredumpError(offset: nil, problem: "instance \(index) names memory \(bad); the coredump has \(memories.count)")
            }
            if let bad = instance.globals.first(where: { Int($0) >= globals.count }) {
                throw CoredumpError(offset: nil, problem: "instance \(index) names global \(bad); the coredump has \(globals.count)")
            }
        }
        for thread in threads {
            if let frame = thread.frames.first(where: { Int($0.instance) >= instances.count }) {
                throw CoredumpError(offset: nil, problem: "thread `\(thread.name)` has a frame of instance \(frame.instance); `coreinstances` has \(instances.count)")
            }
        }
        self.init(processName: processName, modules: modules, instances: instances, memories: memories,
                  globals: globals, threads: threads)
    }

    static func thread(_ section: inout BinaryReader) throws(CoredumpError) -> Thread {
        guard try section.byte("the thread info's kind") == 0 else {
            throw section.error("a `corestack` thread info's kind is not 0x00", at: section.position - 1)
        }
        let name = try section.name("the thread's name")
        var frames: [Frame] = []
        for _ in 0..<(try section.count("frames", minimumSize: 6)) {
            guard try section.byte("a frame's kind") == 0 else {
                throw section.error("a frame's kind is not 0x00", at: section.position - 1)
            }
            let instance = try section.u32("a frame's instance index")
            let function = try section.u32("a frame's function index")
            let offset = try section.u32("a frame's code offset")
            var lists: [[Value]] = []
            for what in ["locals", "stack values"] {
                var values: [Value] = []
                for _ in 0..<(try section.count(what)) {
                    let typeOffset = section.position
                    switch try section.byte("a value's type") {
                    case 0x01: values.append(.missing)
                    case 0x7F: values.append(.i32(Int32(try section.sleb("an i32", bits: 32))))
                    case 0x7E: values.append(.i64(try section.sleb("an i64", bits: 64)))
                    case 0x7D: values.append(.f32(UInt32(try section.littleEndian(4, "an f32"))))
                    case 0x7C: values.append(.f64(try section.littleEndian(8, "an f64")))
                    case let other:
                        throw section.error("a value of type 0x\(String(other, radix: 16)) (the format has 0x01, 0x7F, 0x7E, 0x7D, 0x7C)",
                                            at: typeOffset)
                    }
                }
                lists.append(values)
            }
            frames.append(Frame(instance: instance, function: function, codeOffset: offset, locals: lists[0], stack: lists[1]))
        }
        return Thread(name: name, frames: frames)
    }

    static func global(_ section: inout BinaryReader) throws(CoredumpError) -> Global {
        let typeOffset = section.position
        let rawType = try section.byte("a global's type")
        guard let type = ValueType(rawValue: rawType) else {
            throw section.error("a global of type 0x\(String(rawType, radix: 16))", at: typeOffset)
        }
        _ = try section.byte("a global's mutability")
        let opcodeOffset = section.position
        let bits: UInt64
        switch try section.byte("a global's initializer") {
        case 0x41: bits = UInt64(UInt32(bitPattern: Int32(try section.sleb("an i32.const", bits: 32))))
        case 0x42: bits = UInt64(bitPattern: try section.sleb("an i64.const", bits: 64))
        case 0x43: bits = try section.littleEndian(4, "an f32.const")
        case 0x44: bits = try section.littleEndian(8, "an f64.const")
        case 0xD0:
            _ = try section.byte("ref.null's heap type")
            bits = 0
        case 0xFD:
            guard try section.uleb("a vector opcode") == 12 else { throw section.error("a global initializer other than v128.const", at: opcodeOffset) }
            bits = try section.littleEndian(8, "a v128.const")
            _ = try section.bytes(8, "a v128.const")
        case let other:
            throw section.error("a global initializer 0x\(String(other, radix: 16)) (a coredump's globals are constants)", at: opcodeOffset)
        }
        guard try section.byte("the initializer's end") == 0x0B else {
            throw section.error("a global's initializer does not end after its constant", at: section.position - 1)
        }
        return Global(type: type, bits: bits)
    }

    /// An active data segment's offset: `i32.const` or `i64.const`, `end`.
    static func constantOffset(_ section: inout BinaryReader) throws(CoredumpError) -> UInt64 {
        let offset = section.position
        let value: UInt64
        switch try section.byte("a data segment's offset") {
        case 0x41: value = UInt64(UInt32(bitPattern: Int32(try section.sleb("an i32.const", bits: 32))))
        case 0x42: value = UInt64(bitPattern: try section.sleb("an i64.const", bits: 64))
        default: throw section.error("a data segment's offset is not a constant", at: offset)
        }
        guard try section.byte("the offset's end") == 0x0B else {
            throw section.error("a data segment's offset does not end after its constant", at: section.position - 1)
        }
        return value
    }
}
