import CWasmUnwindABI
import CWasmRuntime

/// The runtime functions compiled code calls for instructions too large to
/// inline: `memory.grow`, bulk memory, the table instructions other than
/// `table.get`/`table.size`, and keeping a foreign function reference's
/// instance alive. Each gets the calling instance's context; the ones that
/// can trap return non-zero instead, and the call site branches to its own
/// trap stub (so the trap's pc, and with it the backtrace, is the wasm
/// instruction's).
///
/// Arguments arrive as 64-bit slots; an i32 operand is its low 32 bits.
enum Libcalls {
    /// The one table every context points to (`wu_vmctx.libcalls`).
    // SAFETY: written once, while the lazy global is initialised, then only
    // read, by compiled code and from any thread.
    nonisolated(unsafe) static let table: UnsafePointer<wu_libcalls> = {
        let table = UnsafeMutablePointer<wu_libcalls>.allocate(capacity: 1)
        table.initialize(to: wu_libcalls(
            memory_grow: { context, delta in
                instance(context).memory.flatMap { memory in
                    memory.grow(by: delta & 0xFFFF_FFFF).map { Int64($0) }
                } ?? -1
            },
            memory_fill: { context, destination, value, count in
                status(instance(context).fillMemory(at: destination, with: UInt8(truncatingIfNeeded: value),
                                                    count: count))
            },
            memory_copy: { context, destination, source, count in
                status(instance(context).copyMemory(to: destination, from: source, count: count))
            },
            memory_init: { context, segment, destination, source, count in
                status(instance(context).initializeMemory(segment: Int(segment), at: destination, from: source,
                                                          count: count))
            },
            data_drop: { context, segment in
                instance(context).droppedData[Int(segment)] = true
                return 0
            },
            table_grow: { context, table, value, delta in
                let instance = instance(context)
                instance.holdReference(value, in: Int(table))
                return instance.tables[Int(table)].grow(by: delta & 0xFFFF_FFFF, value: value).map { Int64($0) } ?? -1
            },
            table_fill: { context, table, destination, value, count in
                status(instance(context).fillTable(Int(table), at: destination, with: value, count: count))
            },
            table_copy: { context, destinationTable, sourceTable, destination, source, count in
                status(instance(context).copyTable(Int(destinationTable), at: destination, from: Int(sourceTable),
                                                   source, count: count))
            },
            table_init: { context, table, segment, destination, source, count in
                status(instance(context).initializeTable(Int(table), segment: Int(segment), at: destination,
                                                         from: source, count: count))
            },
            elem_drop: { context, segment in
                instance(context).elementSegments[Int(segment)] = nil
                return 0
            },
            hold_reference: { context, reference in
                instance(context).holdReference(reference, in: nil)
                return 0
            }))
        return UnsafePointer(table)
    }()

    /// The instance whose context compiled code passed. The instance
    /// outlives every call into its code.
    private static func instance(_ context: UnsafeMutablePointer<wu_vmctx>?) -> Instance {
        // SAFETY: the context of the instance whose code is running.
        Unmanaged<Instance>.fromOpaque(context!.pointee.instance!).takeUnretainedValue()
    }

    private static func status(_ succeeded: Bool) -> Int32 { succeeded ? 0 : 1 }
}

/// The bulk memory and table operations, as the spec defines them: bounds
/// are checked first, and nothing is written when they fail.
extension Instance {
    func fillMemory(at destination: UInt64, with value: UInt8, count: UInt64) -> Bool {
        let destination = destination & 0xFFFF_FFFF, count = count & 0xFFFF_FFFF
        guard let memory, destination + count <= UInt64(memory.size) else { return false }
        memory.withBytes { bytes in
            (bytes.baseAddress! + Int(destination)).initializeMemory(as: UInt8.self, repeating: value, count: Int(count))
        }
        return true
    }

    func copyMemory(to destination: UInt64, from source: UInt64, count: UInt64) -> Bool {
        let destination = destination & 0xFFFF_FFFF, source = source & 0xFFFF_FFFF, count = count & 0xFFFF_FFFF
        guard let memory, destination + count <= UInt64(memory.size), source + count <= UInt64(memory.size) else {
            return false
        }
        memory.withBytes { bytes in
            // memmove: the ranges may overlap.
            (bytes.baseAddress! + Int(destination)).copyMemory(from: bytes.baseAddress! + Int(source),
                                                               byteCount: Int(count))
        }
        return true
    }

    func initializeMemory(segment: Int, at destination: UInt64, from source: UInt64, count: UInt64) -> Bool {
        let destination = destination & 0xFFFF_FFFF, source = source & 0xFFFF_FFFF, count = count & 0xFFFF_FFFF
        let bytes = droppedData[segment] ? [] : module.description.dataSegments[segment].bytes
        guard let memory, source + count <= UInt64(bytes.count), destination + count <= UInt64(memory.size) else {
            return false
        }
        memory.withBytes { memoryBytes in
            bytes.withUnsafeBytes { segmentBytes in
                guard count > 0 else { return }
                (memoryBytes.baseAddress! + Int(destination)).copyMemory(
                    from: segmentBytes.baseAddress! + Int(source), byteCount: Int(count))
            }
        }
        return true
    }

    func fillTable(_ index: Int, at destination: UInt64, with value: UInt64, count: UInt64) -> Bool {
        let destination = destination & 0xFFFF_FFFF, count = count & 0xFFFF_FFFF
        let table = tables[index]
        guard destination + count <= table.size else { return false }
        holdReference(value, in: index)
        for position in destination..<destination + count { _ = table.set(position, value) }
        return true
    }

    func copyTable(_ destinationIndex: Int, at destination: UInt64, from sourceIndex: Int, _ source: UInt64,
                   count: UInt64) -> Bool {
        let destination = destination & 0xFFFF_FFFF, source = source & 0xFFFF_FFFF, count = count & 0xFFFF_FFFF
        let target = tables[destinationIndex], origin = tables[sourceIndex]
        guard destination + count <= target.size, source + count <= origin.size else { return false }
        let elements = (0..<count).map { origin[source + $0]! }
        for element in Set(elements) { holdReference(element, in: destinationIndex) }
        for (position, element) in elements.enumerated() { _ = target.set(destination + UInt64(position), element) }
        return true
    }

    func initializeTable(_ index: Int, segment: Int, at destination: UInt64, from source: UInt64,
                         count: UInt64) -> Bool {
        let destination = destination & 0xFFFF_FFFF, source = source & 0xFFFF_FFFF, count = count & 0xFFFF_FFFF
        let items = elementSegments[segment] ?? []
        let table = tables[index]
        guard source + count <= UInt64(items.count), destination + count <= table.size else { return false }
        for position in 0..<count {
            _ = table.set(destination + position, items[Int(source + position)])
        }
        return true
    }
}
