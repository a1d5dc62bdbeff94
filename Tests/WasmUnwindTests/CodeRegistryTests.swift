import Foundation
import Testing
import WasmUnwind

/// A module at 0x10000 with three functions:
///   function 1 "first"  at offsets 0x00..<0x40, body at module offset 0x20
///   function 2 (no name) at 0x40..<0x80, body at 0x30
///   function 3 "last"   at 0x90..<0xA0 (0x80..<0x90 is a trampoline)
func sampleModule(name: String? = "sample", base: UInt = 0x10000) -> CodeModule {
    CodeModule(name: name, codeRange: base..<(base + 0x100), functions: [
        CodeFunction(index: 1, name: "first", codeRange: 0x00..<0x40, bodyOffset: 0x20, addressMap: [
            AddressMapEntry(nativeOffset: 0x00, wasmOffset: 0x21),
            AddressMapEntry(nativeOffset: 0x10, wasmOffset: 0x24),
            AddressMapEntry(nativeOffset: 0x3B, wasmOffset: 0x27),
        ]),
        CodeFunction(index: 2, name: nil, codeRange: 0x40..<0x80, bodyOffset: 0x30, addressMap: [
            AddressMapEntry(nativeOffset: 0x00, wasmOffset: 0x31),
            AddressMapEntry(nativeOffset: 0x08, wasmOffset: 0x35),
        ]),
        CodeFunction(index: 3, name: "last", codeRange: 0x90..<0xA0, bodyOffset: 0x40, addressMap: [
            AddressMapEntry(nativeOffset: 0x00, wasmOffset: 0x42),
        ]),
    ])
}

@Suite("Code registry and symbolication")
struct CodeRegistryTests {
    @Test("a pc maps to module, function, module offset and function offset")
    func lookup() throws {
        var registry = CodeRegistry()
        try registry.register(sampleModule())
        let symbol = try #require(registry.symbol(for: .programCounter(0x10012)))
        #expect(symbol.moduleName == "sample")
        #expect(symbol.functionIndex == 1)
        #expect(symbol.functionName == "first")
        #expect(symbol.moduleOffset == 0x24)
        #expect(symbol.functionOffset == 0x04)
    }

    @Test("return addresses are looked up one byte earlier, inside the call")
    func returnAddressRule() throws {
        var registry = CodeRegistry()
        try registry.register(sampleModule())
        // A call ending at the last byte of function 1 returns to the first
        // byte of function 2; it still belongs to function 1.
        #expect(registry.symbol(for: .returnAddress(0x10040))?.functionIndex == 1)
        #expect(registry.symbol(for: .returnAddress(0x10040))?.moduleOffset == 0x27)
        #expect(registry.symbol(for: .programCounter(0x10040))?.functionIndex == 2)
        // A call whose last byte is at native offset 0x10 maps to the
        // instruction before the one starting there.
        #expect(registry.symbol(for: .returnAddress(0x10011))?.moduleOffset == 0x24)
        #expect(registry.symbol(for: .returnAddress(0x10010))?.moduleOffset == 0x21)
    }

    @Test("module and function boundaries")
    func boundaries() throws {
        var registry = CodeRegistry()
        try registry.register(sampleModule())
        #expect(registry.symbol(for: .programCounter(0xFFFF)) == nil)
        #expect(registry.symbol(for: .programCounter(0x10000))?.functionIndex == 1)
        #expect(registry.symbol(for: .programCounter(0x100FF))?.moduleName == "sample")
        #expect(registry.symbol(for: .programCounter(0x100FF))?.function == nil)
        #expect(registry.symbol(for: .programCounter(0x10100)) == nil)
        // Inside the module but between functions: a trampoline.
        let trampoline = try #require(registry.symbol(for: .programCounter(0x10085)))
        #expect(trampoline.function == nil && trampoline.moduleOffset == nil)
        #expect(registry.symbol(for: .programCounter(0x1009F))?.functionIndex == 3)
        #expect(registry.symbol(for: .programCounter(0x100A0))?.function == nil)
    }

    @Test("overlapping modules are rejected; unregistering removes a module")
    func overlapAndUnregister() throws {
        var registry = CodeRegistry()
        try registry.register(sampleModule(name: "a", base: 0x10000))
        try registry.register(sampleModule(name: "b", base: 0x20000))
        #expect(throws: CodeRegistryError.overlappingModules(new: 0x100FF..<0x101FF, existing: 0x10000..<0x10100)) {
            try registry.register(sampleModule(name: "c", base: 0x100FF))
        }
        #expect(throws: CodeRegistryError.overlappingModules(new: 0x1FF01..<0x20001, existing: 0x20000..<0x20100)) {
            try registry.register(sampleModule(name: "c", base: 0x1FF01))
        }
        try registry.register(sampleModule(name: "c", base: 0x10100))
        #expect(registry.symbol(for: .programCounter(0x10100))?.moduleName == "c")
        let removed = registry.unregister(codeBase: 0x10000)
        let removedAgain = registry.unregister(codeBase: 0x10000)
        #expect(removed && !removedAgain)
        #expect(registry.symbol(for: .programCounter(0x10010)) == nil)
        #expect(registry.symbol(for: .programCounter(0x20010))?.moduleName == "b")
    }

    @Test("inconsistent module tables are rejected")
    func inconsistentTables() {
        var registry = CodeRegistry()
        var outside = sampleModule()
        outside.functions[2].codeRange = 0x90..<0x180
        #expect(throws: CodeRegistryError.functionOutsideModule(functionIndex: 3, range: 0x90..<0x180, moduleSize: 0x100)) {
            try registry.register(outside)
        }
        var overlapping = sampleModule()
        overlapping.functions[1].codeRange = 0x30..<0x80
        #expect(throws: CodeRegistryError.overlappingFunctions(functionIndex: 2, range: 0x30..<0x80)) {
            try registry.register(overlapping)
        }
        var unsorted = sampleModule()
        unsorted.functions[0].addressMap.swapAt(0, 1)
        #expect(throws: CodeRegistryError.unsortedAddressMap(functionIndex: 1, nativeOffset: 0x00)) {
            try registry.register(unsorted)
        }
    }
}

@Suite("Rendering")
struct RenderingTests {
    func sampleTrace() throws -> SymbolicatedBacktrace {
        var registry = CodeRegistry()
        try registry.register(sampleModule())
        var unnamed = sampleModule(name: nil, base: 0x30000)
        unnamed.functions.removeLast()
        try registry.register(unnamed)
        let trace = Backtrace(frames: [
            Frame(address: .programCounter(0x10012), framePointer: 0x7FF0, activation: 0),
            Frame(address: .returnAddress(0x10049), framePointer: 0x8000, activation: 0),
            Frame(address: .returnAddress(0x30011), framePointer: 0x9000, activation: 1),
            Frame(address: .returnAddress(0x50000), framePointer: 0x9020, activation: 1),
        ], error: .framePointerMovedBackwards(fp: 0x9020, olderFP: 0x10))
        return registry.symbolicate(trace)
    }

    @Test("text is Wasmtime's layout, with the error after the frames")
    func goldenText() throws {
        #expect(try sampleTrace().rendered() == """
                0:     0x24 - sample!first
                1:     0x35 - sample!<wasm function 2>
                2:     0x24 - <unknown>!first
                3: <unregistered code at 0x50000>
            backtrace incomplete after 4 frames: frame at 0x9020 links to a lower address 0x10; older frames must be higher [frame-pointer-moved-backwards]
            """)
    }

    @Test("activation boundaries can be marked")
    func boundaries() throws {
        var trace = try sampleTrace()
        trace.error = nil
        #expect(trace.rendered(activationBoundaries: true) == """
                0:     0x24 - sample!first
                1:     0x35 - sample!<wasm function 2>
                   -- host frames; activation 1 --
                2:     0x24 - <unknown>!first
                3: <unregistered code at 0x50000>
            """)
    }

    @Test("three-digit indices and long offsets keep Wasmtime's widths")
    func widths() {
        let function = CodeFunction(index: 7, name: "f", codeRange: 0..<16, bodyOffset: 0,
                                    addressMap: [AddressMapEntry(nativeOffset: 0, wasmOffset: 0x1234567)])
        let frame = SymbolicatedFrame(
            frame: Frame(address: .programCounter(0), framePointer: 0, activation: 0),
            symbol: FrameSymbol(moduleName: "m", function: function, moduleOffset: 0x1234567))
        #expect(frame.line(index: 123) == "  123: 0x1234567 - m!f")
        #expect(frame.line(index: 1234) == " 1234: 0x1234567 - m!f")
    }

    /// `count` frames of one recursive function under a distinct newest and
    /// oldest frame, as a stack overflow leaves them.
    func recursion(_ count: Int) -> SymbolicatedBacktrace {
        func frame(_ offset: UInt32?, name: String, index: Int) -> SymbolicatedFrame {
            let function = CodeFunction(index: name == "main" ? 1 : 2, name: name, codeRange: 0..<16, bodyOffset: 0, addressMap: [])
            return SymbolicatedFrame(frame: Frame(address: .returnAddress(UInt(0x1000 + index)), framePointer: 0, activation: 0),
                                     symbol: FrameSymbol(moduleName: "traps", function: function, moduleOffset: offset))
        }
        var frames = [frame(nil, name: "recurse", index: 0)]
        for index in 1...count { frames.append(frame(0x96, name: "recurse", index: index)) }
        frames.append(frame(0x9c, name: "main", index: count + 1))
        return SymbolicatedBacktrace(frames: frames)
    }

    @Test("runs of identical frames print once with a count; the newest and oldest frames stay")
    func folding() {
        #expect(recursion(16_324).rendered() == """
                0: traps!recurse
                1-16324:     0x96 - traps!recurse (16,324 times)
            16325:     0x9c - traps!main
            """)
        // Shorter runs than the threshold print frame by frame.
        #expect(recursion(2).rendered() == """
                0: traps!recurse
                1:     0x96 - traps!recurse
                2:     0x96 - traps!recurse
                3:     0x9c - traps!main
            """)
    }

    @Test("a trace cut short says why: the caller's limit, or a trap's full buffer")
    func truncation() {
        let trace = recursion(30)
        #expect(trace.prefix(3).rendered() == """
                0: traps!recurse
                1:     0x96 - traps!recurse
                2:     0x96 - traps!recurse
                   ... (backtrace truncated after 3 frames; 29 more not shown)
            """)
        var full = trace
        full.truncation = .bufferFull(capacity: 65_536)
        #expect(full.rendered().hasSuffix("""
                   ... older frames not recorded: a trap records only the newest 65,536 frames
            """))
    }
}
