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
            debug: identity.map { CaptureFile.ModuleDebug(identity: $0, sections: carriedDebugSections) },
            frameLayout: frameLayout)
    }

    /// Which value each frame slot holds at each call and trap site.
    var frameLayout: CaptureFile.FrameLayout {
        var calls: [UInt32: [UInt8]] = [:]
        var traps: [UInt32: [UInt8]?] = [:]
        for function in functions {
            for site in function.callSites { calls[UInt32(site.returnAddressOffset)] = site.operandKinds.map(\.valueTypeByte) }
            for site in function.trapSites { traps[UInt32(site.codeOffset)] = .some(site.operandKinds.map { $0.map(\.valueTypeByte) }) }
        }
        return CaptureFile.FrameLayout(locals: functions.map { $0.localKinds.map(\.valueTypeByte) }, callSites: calls, trapSites: traps)
    }
}
