import WasmUnwind

/// One loaded piece of JIT code as debuggers and profilers need to see it:
/// what `GDBJITImage`, `PerfMap` and `JitDump` are made from.
///
/// The code registry's `CodeModule` names the functions and stubs and maps
/// their native offsets to wasm offsets; this adds the machine code itself,
/// the `.eh_frame` CFI that describes it (where the JIT placed it in
/// memory), and the file name tools show for its "source lines" — which are
/// wasm module offsets: line 150 is the instruction at offset 150 of the
/// module binary.
public struct JITCodeDescription: @unchecked Sendable {
    /// Functions and stubs, their offsets from `module.codeRange`'s start,
    /// and each function's address map.
    public var module: CodeModule
    /// The machine code, in the process's memory, starting at
    /// `module.codeRange.lowerBound`. Read while the description is turned
    /// into an image or a record; the JIT keeps it mapped meanwhile.
    public var machineCode: UnsafeRawBufferPointer
    /// The `.eh_frame` CIE and FDEs describing the code, where they lie in
    /// memory (their pc-relative pointers are relative to that address), or
    /// nil for code without CFI.
    public var ehFrame: UnsafeRawBufferPointer?
    /// The file name line information refers to, such as `factorial.wasm`.
    public var sourceName: String
    /// The source line of a wasm module offset (the innermost function's,
    /// from the module's DWARF), when the module has one: then tools show
    /// C or Rust lines rather than offsets in `sourceName`.
    public var sourceLine: (@Sendable (UInt32) -> (file: String, line: UInt32)?)?

    public init(module: CodeModule, machineCode: UnsafeRawBufferPointer, ehFrame: UnsafeRawBufferPointer?,
                sourceName: String, sourceLine: (@Sendable (UInt32) -> (file: String, line: UInt32)?)? = nil) {
        self.module = module
        self.machineCode = machineCode
        self.ehFrame = ehFrame
        self.sourceName = sourceName
        self.sourceLine = sourceLine
    }

    /// One function or stub: its printed name (`module!function`,
    /// demangled, as backtraces print it), absolute code range, and line
    /// entries (absolute address, file — 0 for `sourceName`, else the
    /// index in `sourceFiles` plus one — and line).
    struct Routine {
        var name: String
        var range: Range<UInt64>
        var lines: [(address: UInt64, file: Int, line: UInt32)]
        var isStub: Bool
    }


    /// Every function and stub, by address.
    var routines: [Routine] { lineTable.routines }

    /// The routines with their lines, and the source files `sourceLine`
    /// names, in order of first use.
    var lineTable: (routines: [Routine], files: [String]) {
        let base = UInt64(module.codeRange.lowerBound)
        var files: [String] = [], fileIndex: [String: Int] = [:]
        var all: [Routine] = module.functions.map { function in
            let start = base + UInt64(function.codeRange.lowerBound)
            // Code of no wasm instruction (a prologue) is the function's
            // header: its body's offset.
            let offsets = function.addressMap.map { $0.moduleOffset ?? function.bodyOffset }
            // Source lines where the DWARF has them. Code it gives no line
            // (line 0: compiler bookkeeping; the prologue) continues the
            // line before it — the prologue takes the function's first
            // line — so a routine's lines are all source lines; a function
            // the DWARF says nothing about keeps its wasm offsets.
            var sources = offsets.map { offset in sourceLine?(offset) }
            if let first = sources.firstIndex(where: { $0 != nil }) {
                for index in sources.indices where sources[index] == nil {
                    sources[index] = index < first ? sources[first] : sources[index - 1]
                }
            }
            let lines = zip(function.addressMap, zip(offsets, sources)).map { entry, located -> (address: UInt64, file: Int, line: UInt32) in
                let (offset, source) = located
                if let source {
                    let index = fileIndex[source.file] ?? {
                        files.append(source.file)
                        fileIndex[source.file] = files.count
                        return files.count
                    }()
                    return (start + UInt64(entry.nativeOffset), index, source.line)
                }
                return (start + UInt64(entry.nativeOffset), 0, max(1, offset))
            }
            return Routine(name: module.printedName(of: function),
                           range: start..<(base + UInt64(function.codeRange.upperBound)), lines: lines, isStub: false)
        }
        all += module.stubs.map { stub in
            Routine(name: module.printedName(of: stub),
                    range: (base + UInt64(stub.codeRange.lowerBound))..<(base + UInt64(stub.codeRange.upperBound)),
                    lines: [], isStub: true)
        }
        return (all.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }, files)
    }

    /// The machine code of `range` (absolute addresses).
    func code(in range: Range<UInt64>) -> [UInt8] {
        let base = UInt64(module.codeRange.lowerBound)
        return Array(machineCode[Int(range.lowerBound - base)..<Int(range.upperBound - base)])
    }
}
