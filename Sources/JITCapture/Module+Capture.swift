import StackCapture
import WasmJIT
import WasmUnwind

extension Module {
    /// What a capture — and the post-mortem descriptor — keeps of the
    /// module: names, address maps, stack maps and CFI at their addresses,
    /// its identity, and its DWARF when the engine shows backtrace details.
    public var captureModule: CaptureFile.Module {
        let base = code.baseAddress
        let bytes = code.bytes
        return CaptureFile.Module(
            name: name, codeBase: base, codeSize: UInt(code.size),
            functions: codeModule.functions, stubs: codeModule.stubs, stackMaps: stackMaps,
            ehFrame: .init(baseAddress: base + UInt(unwindInfo.ehFrame.lowerBound), bytes: Array(bytes[unwindInfo.ehFrame])),
            searchTable: .init(baseAddress: base + UInt(unwindInfo.searchTable.lowerBound),
                               bytes: Array(bytes[unwindInfo.searchTable])),
            debug: identity.map { CaptureFile.ModuleDebug(identity: $0, sections: carriedDebugSections) })
    }
}
