import WasmUnwind

/// A process as the post-mortem reader saw it: its threads, mapped files
/// and signal, where the descriptor was, and exactly the memory the reader
/// read — a few kilobytes that replay a read of a core of gigabytes
/// (`dump CORE --record-reads FILE`). `make fuzz` mutates recordings of
/// real cores; a recording that once broke the reader is a regression
/// fixture.
///
/// Format (little-endian): `"WURECORD"`, version (u32 = 1), descriptor
/// address (u64), the signal (u8 present, then number, code (i32), address
/// (u64), sender (i32)), threads (ULEB count, then tid (i64), pc, fp, sp
/// (u64)), mapped files (ULEB count, then start, end, file offset (u64),
/// path (ULEB length, UTF-8)), memory regions (ULEB count, then address
/// (u64), ULEB length, bytes).
public struct ProcessRecording: ProcessImage, Hashable, Sendable {
    public var descriptorAddress: UInt
    public var threads: [ProcessThread]
    public var mappedFiles: [MappedFile]
    public var signal: ProcessSignal?
    /// Disjoint regions of memory, sorted by address.
    public private(set) var regions: [(address: UInt, bytes: [UInt8])]

    static let magic = Array("WURECORD".utf8)
    static let maximumCount = 1 << 20

    public static func == (a: ProcessRecording, b: ProcessRecording) -> Bool {
        a.descriptorAddress == b.descriptorAddress && a.threads == b.threads && a.mappedFiles == b.mappedFiles
            && a.signal == b.signal && a.regions.elementsEqual(b.regions) { $0.address == $1.address && $0.bytes == $1.bytes }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(descriptorAddress)
        hasher.combine(threads)
    }

    /// What `process` showed of itself, with the memory ranges in `reads`
    /// (merged where they overlap or touch).
    public init(of process: some ProcessImage, descriptorAddress: UInt, reads: [Range<UInt>]) {
        self.descriptorAddress = descriptorAddress
        threads = process.threads
        mappedFiles = process.mappedFiles
        signal = process.signal
        var merged: [Range<UInt>] = []
        for range in reads.sorted(by: { $0.lowerBound < $1.lowerBound }) where !range.isEmpty {
            if let last = merged.last, range.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        regions = merged.compactMap { range in
            process.bytes(at: range.lowerBound, count: Int(range.upperBound - range.lowerBound)).map { (range.lowerBound, $0) }
        }
    }

    public func bytes(at address: UInt, count: Int) -> [UInt8]? {
        guard count >= 0 else { return nil }
        var low = 0, high = regions.count
        while low < high {
            let middle = (low + high) / 2
            let region = regions[middle]
            if region.address &+ UInt(region.bytes.count) <= address { low = middle + 1 } else { high = middle }
        }
        guard low < regions.count, regions[low].address <= address else { return nil }
        let start = Int(address - regions[low].address)
        guard start <= regions[low].bytes.count, count <= regions[low].bytes.count - start else { return nil }
        return Array(regions[low].bytes[start..<(start + count)])
    }

    /// A copy with the recorded bytes at `address` replaced by `bytes`
    /// (nil if the recording does not have them all): a process that left
    /// other values in its memory, for tests and the fuzzer.
    public func replacing(_ bytes: [UInt8], at address: UInt) -> ProcessRecording? {
        guard self.bytes(at: address, count: bytes.count) != nil,
              let index = regions.lastIndex(where: { $0.address <= address }) else { return nil }
        var copy = self
        let start = Int(address - regions[index].address)
        copy.regions[index].bytes.replaceSubrange(start..<(start + bytes.count), with: bytes)
        return copy
    }

    public func serialized() -> [UInt8] {
        var writer = ByteWriter()
        writer.write(Self.magic)
        writer.write(UInt32(1))
        writer.write(UInt64(descriptorAddress))
        writer.write(UInt8(signal == nil ? 0 : 1))
        if let signal {
            writer.write(signal.number)
            writer.write(signal.code)
            writer.write(UInt64(signal.address))
            writer.write(signal.senderPID)
        }
        writer.writeULEB(UInt64(threads.count))
        for thread in threads {
            writer.write(thread.tid)
            for value in [thread.pc, thread.fp, thread.sp] { writer.write(UInt64(value)) }
        }
        writer.writeULEB(UInt64(mappedFiles.count))
        for file in mappedFiles {
            for value in [file.range.lowerBound, file.range.upperBound, file.fileOffset] { writer.write(UInt64(value)) }
            writer.writeULEB(UInt64(file.path.utf8.count))
            writer.write(Array(file.path.utf8))
        }
        writer.writeULEB(UInt64(regions.count))
        for region in regions {
            writer.write(UInt64(region.address))
            writer.writeULEB(UInt64(region.bytes.count))
            writer.write(region.bytes)
        }
        return writer.bytes
    }

    /// Parses a recording; every count and length is checked against the
    /// bytes that remain, and regions must be sorted and disjoint.
    public init(parsing bytes: [UInt8]) throws(ByteFormatError) {
        var reader = ByteReader(bytes)
        guard Array(try reader.readBytes(8, "the magic WURECORD")) == Self.magic else {
            throw ByteFormatError(offset: 0, expected: "the magic WURECORD")
        }
        let version: UInt32 = try reader.readInteger("the version")
        guard version == 1 else { throw reader.error(at: 8, "version 1, found \(version)") }
        descriptorAddress = UInt(try reader.readInteger("the descriptor address", as: UInt64.self))
        if try reader.readUInt8("whether there is a signal") != 0 {
            signal = ProcessSignal(number: try reader.readInteger("the signal number"), code: try reader.readInteger("si_code"),
                                   address: UInt(try reader.readInteger("si_addr", as: UInt64.self)),
                                   senderPID: try reader.readInteger("si_pid"))
        }
        threads = []
        for _ in 0..<(try reader.readULEB("the thread count", atMost: min(Self.maximumCount, reader.remaining / 32))) {
            threads.append(ProcessThread(tid: try reader.readInteger("a thread id"),
                                         pc: UInt(try reader.readInteger("rip", as: UInt64.self)),
                                         fp: UInt(try reader.readInteger("rbp", as: UInt64.self)),
                                         sp: UInt(try reader.readInteger("rsp", as: UInt64.self))))
        }
        mappedFiles = []
        for _ in 0..<(try reader.readULEB("the mapped file count", atMost: min(Self.maximumCount, reader.remaining / 25))) {
            let start = UInt(try reader.readInteger("a mapping's start", as: UInt64.self))
            let end = UInt(try reader.readInteger("a mapping's end", as: UInt64.self))
            let offset = UInt(try reader.readInteger("a mapping's file offset", as: UInt64.self))
            guard start <= end else { throw reader.error("a mapping that ends after it starts") }
            let length = try reader.readULEB("a path's length", atMost: reader.remaining)
            let path = String(decoding: try reader.readBytes(length, "a path"), as: UTF8.self)
            mappedFiles.append(MappedFile(range: start..<end, fileOffset: offset, path: path))
        }
        regions = []
        for _ in 0..<(try reader.readULEB("the region count", atMost: min(Self.maximumCount, reader.remaining / 9))) {
            let at = reader.offset
            let address = UInt(try reader.readInteger("a region's address", as: UInt64.self))
            let length = try reader.readULEB("a region's length", atMost: reader.remaining)
            let content = Array(try reader.readBytes(length, "a region's bytes"))
            if let last = regions.last {
                let (end, overflow) = last.address.addingReportingOverflow(UInt(last.bytes.count))
                guard !overflow, address >= end else { throw reader.error(at: at, "regions sorted by address, not overlapping") }
            }
            guard address <= UInt.max - UInt(length) else { throw reader.error(at: at, "a region that does not wrap around") }
            regions.append((address, content))
        }
        guard reader.isAtEnd else { throw reader.error("the end of the recording, found \(reader.remaining) more bytes") }
    }
}

/// A process image that remembers every range of memory read from it.
public final class ReadRecorder<Process: ProcessImage>: ProcessImage {
    public let process: Process
    public private(set) var reads: [Range<UInt>] = []

    public init(_ process: Process) { self.process = process }

    public var threads: [ProcessThread] { process.threads }
    public var mappedFiles: [MappedFile] { process.mappedFiles }
    public var signal: ProcessSignal? { process.signal }

    public func bytes(at address: UInt, count: Int) -> [UInt8]? {
        let result = process.bytes(at: address, count: count)
        if result != nil { reads.append(address..<(address + UInt(count))) }
        return result
    }

    public func stack(from sp: UInt, upTo end: UInt, maximumBytes: Int) -> CapturedMemoryReader.Segment? {
        let result = process.stack(from: sp, upTo: end, maximumBytes: maximumBytes)
        if let result { reads.append(result.baseAddress..<(result.baseAddress + UInt(result.bytes.count))) }
        return result
    }
}
