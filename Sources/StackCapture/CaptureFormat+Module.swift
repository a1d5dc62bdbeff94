@_spi(Tools) import WasmUnwind
import UnwindReports

extension CaptureFile.Module {
    /// MODULE: the module's name, code range, functions (with address
    /// maps), trampolines and stubs, stack maps and CFI. Every range is
    /// checked here, where its offset is known: functions and stubs sorted,
    /// disjoint and inside the code; the CFI inside the code range after
    /// them; every search-table entry naming code and an FDE inside it;
    /// from minor version 1, the exception handlers.
    init(reading reader: inout ByteReader, minor: UInt16 = CaptureFormat.minorVersion,
         architecture: CaptureFile.Architecture = .x86_64) throws(ByteFormatError) {
        let flags = try reader.readUInt8("the module flags")
        name = flags & 1 != 0 ? try reader.readString("the module name") : nil
        let baseOffset = reader.offset
        codeBase = UInt(try reader.readInteger("the code base", as: UInt64.self))
        codeSize = UInt(try reader.readInteger("the code size", as: UInt64.self))
        guard codeSize <= UInt(UInt32.max), codeBase <= UInt.max - codeSize else {
            throw reader.error(at: baseOffset, "code of at most 4 GiB inside the address space, found \(codeSize) bytes at \(hex(codeBase))")
        }
        let (functions, codeEnd) = try Self.readFunctions(&reader, codeSize: codeSize)
        self.functions = functions
        let (stubs, stubEnd) = try Self.readStubs(&reader, codeSize: codeSize, functions: functions)
        self.stubs = stubs
        stackMaps = try StackMapTable(reading: &reader, codeSize: UInt32(codeSize))
        (ehFrame, searchTable) = try Self.readCFI(&reader, code: codeBase..<(codeBase + codeSize),
                                                  lastCode: codeBase + max(codeEnd, stubEnd), architecture: architecture)
        // Minor version 1: the call sites' exception handlers.
        if minor >= 2 && !reader.isAtEnd {
            stackMaps = try stackMaps.readingHandlerScopes(from: &reader, codeSize: UInt32(codeSize))
        } else if minor == 1 && !reader.isAtEnd {
            stackMaps = try stackMaps.readingHandlers(from: &reader, codeSize: UInt32(codeSize))
        }
    }

    /// The functions, sorted and disjoint inside the code, with their
    /// address maps in native-offset order; and where the last one ends.
    static func readFunctions(_ reader: inout ByteReader, codeSize: UInt) throws(ByteFormatError) -> ([CodeFunction], UInt) {
        let functionCount = try reader.readULEB("the function count", atMost: reader.remaining / 6)
        var functions: [CodeFunction] = []
        var codeEnd: UInt = 0
        for position in 0..<functionCount {
            let index = try reader.readULEB("function \(position)'s index", atMost: Int(UInt32.max))
            let hasName = try reader.readUInt8("function \(position)'s name flag")
            let name = hasName != 0 ? try reader.readString("function \(position)'s name") : nil
            let rangeOffset = reader.offset
            let start = try reader.readULEB("function \(position)'s code start", atMost: Int(codeSize))
            let end = try reader.readULEB("function \(position)'s code end", atMost: Int(codeSize))
            guard start <= end else { throw reader.error(at: rangeOffset, "function \(position)'s code start \(start) not after its end \(end)") }
            guard UInt(start) >= codeEnd else {
                throw reader.error(at: rangeOffset, "function \(position) at \(start)..<\(end) to start after the previous one's end \(codeEnd) (sorted, disjoint)")
            }
            codeEnd = UInt(end)
            let body = try reader.readULEB("function \(position)'s body offset", atMost: Int(UInt32.max))
            let mapCount = try reader.readULEB("function \(position)'s address map length", atMost: reader.remaining / 2)
            var map: [AddressMapEntry] = []
            for entry in 0..<mapCount {
                let mapOffset = reader.offset
                let native = try reader.readULEB("an address map native offset", atMost: Int(UInt32.max))
                let wasm = try reader.readULEB("an address map wasm offset", atMost: Int(UInt32.max))
                if let last = map.last, UInt32(native) <= last.nativeOffset {
                    throw reader.error(at: mapOffset, "function \(position)'s address map entry \(entry) to follow native offset \(last.nativeOffset), found \(native)")
                }
                map.append(AddressMapEntry(nativeOffset: UInt32(native), wasmOffset: UInt32(wasm)))
            }
            functions.append(CodeFunction(index: UInt32(index), name: name, codeRange: UInt(start)..<UInt(end),
                                          bodyOffset: UInt32(body), addressMap: map))
        }
        return (functions, codeEnd)
    }

    /// The trampolines and stubs, sorted, overlapping no function or each
    /// other; and where the last one ends.
    static func readStubs(_ reader: inout ByteReader, codeSize: UInt, functions: [CodeFunction]) throws(ByteFormatError) -> ([CodeStub], UInt) {
        let stubCount = try reader.readULEB("the stub count", atMost: reader.remaining / 4)
        var stubs: [CodeStub] = []
        var stubEnd: UInt = 0
        for position in 0..<stubCount {
            let start = reader.offset
            guard let kind = try CaptureFile.HostFrame.readKind(&reader, "stub \(position)'s kind") else {
                throw reader.error(at: start, "stub \(position)'s kind to be JIT code, found 0 (host)")
            }
            let rangeOffset = reader.offset
            let lower = try reader.readULEB("stub \(position)'s code start", atMost: Int(codeSize))
            let upper = try reader.readULEB("stub \(position)'s code end", atMost: Int(codeSize))
            let range = UInt(lower)..<UInt(max(lower, upper))
            guard lower <= upper, range.lowerBound >= stubEnd,
                  !functions.contains(where: { $0.codeRange.overlaps(range) }) else {
                throw reader.error(at: rangeOffset, "stub \(position) at \(lower)..<\(upper) to be sorted and to overlap no function or stub")
            }
            stubEnd = range.upperBound
            let hasName = try reader.readUInt8("stub \(position)'s name flag")
            let name = hasName != 0 ? try reader.readString("stub \(position)'s name") : nil
            stubs.append(CodeStub(kind: kind, codeRange: range, name: name))
        }
        return (stubs, stubEnd)
    }

    /// The CFI libunwind will parse when the capture is verified: the
    /// .eh_frame, checked entry by entry, and its search table, both in the
    /// code range after the last function or stub.
    static func readCFI(_ reader: inout ByteReader, code: Range<UInt>, lastCode: UInt, architecture: CaptureFile.Architecture)
        throws(ByteFormatError) -> (ehFrame: CapturedMemoryReader.Segment, searchTable: CapturedMemoryReader.Segment)
    {
        let codeBase = code.lowerBound
        let ehFrameOffset = reader.offset
        let ehFrame = try CapturedMemoryReader.Segment(reading: &reader, "the .eh_frame")
        // What libunwind will parse when the capture is verified.
        let ehFrameData = reader.offset - ehFrame.bytes.count
        do {
            try CapturedCFI.validate(ehFrame.bytes, registers: CapturedCFI.registerCount(architecture))
        } catch {
            throw reader.error(at: ehFrameData + error.offset, "in the .eh_frame, \(error.expected)")
        }
        guard ehFrame.baseAddress >= lastCode, ehFrame.range.upperBound <= code.upperBound else {
            throw reader.error(at: ehFrameOffset, "the .eh_frame at \(hex(ehFrame.range)) to lie in the module's code range \(hex(code)) after its last function or stub (\(hex(lastCode)))")
        }
        let tableOffset = reader.offset
        let searchTable = try CapturedMemoryReader.Segment(reading: &reader, "the CFI search table")
        guard searchTable.bytes.count % 8 == 0 else {
            throw reader.error(at: tableOffset, "the CFI search table to be whole 8-byte pairs, found \(searchTable.bytes.count) bytes")
        }
        guard searchTable.baseAddress >= ehFrame.range.upperBound, searchTable.range.upperBound <= code.upperBound else {
            throw reader.error(at: tableOffset, "the CFI search table at \(hex(searchTable.range)) to lie in the module's code range \(hex(code)) after the .eh_frame")
        }
        // Each pair: code start and FDE, both relative to the code base.
        var previousStart: UInt32?
        for pair in 0..<(searchTable.bytes.count / 8) {
            let bytes = searchTable.bytes[(pair * 8)..<(pair * 8 + 8)]
            let start = bytes.prefix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let fde = bytes.suffix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let fdeAddress = codeBase + UInt(fde)
            guard UInt(start) < ehFrame.baseAddress - codeBase, previousStart.map({ start > $0 }) ?? true,
                  ehFrame.range.contains(fdeAddress), ehFrame.range.upperBound - fdeAddress >= 8 else {
                throw reader.error(at: tableOffset, "CFI search table entry \(pair) (code \(hex(start)), FDE \(hex(fde))) to name code before the .eh_frame, in order, and an FDE inside it")
            }
            previousStart = start
        }
        return (ehFrame, searchTable)
    }
}
