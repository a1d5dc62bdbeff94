import CUnwindShim

/// libunwind unwinding a stack that is not this process's: registers,
/// memory and CFI all come from the caller (a captured stack), through
/// libunwind's remote API with custom accessors — the way `perf` unwinds the
/// user stacks it copied.
public enum RemoteUnwinder {
    /// Memory of the other process, at its addresses.
    public struct Segment: Sendable {
        public var baseAddress: UInt
        public var bytes: [UInt8]
        public init(baseAddress: UInt, bytes: [UInt8]) {
            self.baseAddress = baseAddress
            self.bytes = bytes
        }
    }

    /// Code with CFI: its range and its search table (sorted int32 pairs:
    /// code start - segment base, FDE address - segment base), whose bytes
    /// and FDEs must be among the segments.
    public struct CodeTable: Sendable {
        public var codeRange: Range<UInt>
        public var segmentBase: UInt
        public var searchTable: UInt
        public var entries: Int
        public init(codeRange: Range<UInt>, segmentBase: UInt, searchTable: UInt, entries: Int) {
            self.codeRange = codeRange
            self.segmentBase = segmentBase
            self.searchTable = searchTable
            self.entries = entries
        }
    }

    /// Unwinds from `registers` (DWARF numbers; 16 = rip, 7 = rsp, 6 = rbp)
    /// until libunwind stops or `capacity` frames. The first frame's pc is
    /// used as is (libunwind's remote start), later ones are return addresses.
    public static func unwind(registers: [UInt8: UInt], segments: [Segment], tables: [CodeTable],
                              capacity: Int = 1 << 16) -> [LibunwindFrame] {
        var image = wu_remote_image()
        for (number, value) in registers where number <= 16 {
            withUnsafeMutableBytes(of: &image.registers) { raw in
                raw.storeBytes(of: UInt64(value), toByteOffset: Int(number) * 8, as: UInt64.self)
            }
            image.register_mask |= 1 << UInt32(number)
        }
        let cTables = tables.map(\.cTable)
        let frames = UnsafeMutablePointer<wu_oracle_frame>.allocate(capacity: capacity)
        defer { frames.deallocate() }
        // Pin every segment's bytes for the duration of the unwind.
        func withSegments<R>(_ index: Int, _ built: [wu_remote_segment], _ body: ([wu_remote_segment]) -> R) -> R {
            guard index < segments.count else { return body(built) }
            return segments[index].bytes.withUnsafeBufferPointer { buffer in
                withSegments(index + 1, built + [wu_remote_segment(
                    base: UInt64(segments[index].baseAddress), length: UInt64(buffer.count), bytes: buffer.baseAddress)], body)
            }
        }
        let count = withSegments(0, []) { cSegments in
            cSegments.withUnsafeBufferPointer { segmentBuffer in
                cTables.withUnsafeBufferPointer { tableBuffer in
                    image.segments = segmentBuffer.baseAddress
                    image.segment_count = UInt64(segmentBuffer.count)
                    image.tables = tableBuffer.baseAddress
                    image.table_count = UInt64(tableBuffer.count)
                    return wu_oracle_unwind_remote(&image, frames, Int32(capacity))
                }
            }
        }
        guard count > 0 else { return [] }
        return UnsafeBufferPointer(start: frames, count: Int(count)).map(LibunwindFrame.init)
    }
}

extension RemoteUnwinder {
    /// Unwinds thread `tid` of another process — stopped by the caller with
    /// ptrace — with libunwind-ptrace over the live process: registers and
    /// memory read through ptrace, unwind information from the ELF files it
    /// maps (host frames), and from `tables` for JIT code (its CFI and
    /// search table, in the process's memory at those addresses).
    public static func unwindStoppedThread(tid: Int64, tables: [CodeTable], capacity: Int = 4096) -> [LibunwindFrame] {
        let cTables = tables.map(\.cTable)
        let frames = UnsafeMutablePointer<wu_oracle_frame>.allocate(capacity: capacity)
        defer { frames.deallocate() }
        let count = cTables.withUnsafeBufferPointer { buffer in
            wu_oracle_unwind_ptrace(Int32(tid), buffer.baseAddress, UInt64(buffer.count), frames, Int32(capacity))
        }
        guard count > 0 else { return [] }
        return UnsafeBufferPointer(start: frames, count: Int(count)).map(LibunwindFrame.init)
    }
}

extension RemoteUnwinder.CodeTable {
    /// The table as the C shim takes it.
    var cTable: wu_oracle_unwind_table {
        wu_oracle_unwind_table(start: UInt64(codeRange.lowerBound), end: UInt64(codeRange.upperBound), segbase: UInt64(segmentBase),
                               table: UInt64(searchTable), table_entries: UInt64(entries))
    }
}
