import Foundation
import Testing
import UnwindReports
import WasmUnwind

@Suite("JSON reports")
struct JSONFormatTests {
    /// Three frames of a module at 0x10000 (a named function, an unnamed
    /// one) and one in no module; the walk stopped with an error.
    func trace() throws -> SymbolicatedBacktrace {
        var registry = CodeRegistry()
        try registry.register(CodeModule(name: "m", codeRange: 0x10000..<0x10100, functions: [
            CodeFunction(index: 1, name: "_ZN4core9panicking5panic17h0123456789abcdefE", codeRange: 0x00..<0x40,
                         bodyOffset: 0x20, addressMap: [AddressMapEntry(nativeOffset: 0x10, wasmOffset: 0x24)]),
            CodeFunction(index: 2, name: nil, codeRange: 0x40..<0x80, bodyOffset: 0x30,
                         addressMap: [AddressMapEntry(nativeOffset: 0x08, wasmOffset: 0x35)]),
        ]))
        return registry.symbolicate(Backtrace(frames: [
            Frame(address: .programCounter(0x10012), framePointer: 0x7FF0, activation: 0),
            Frame(address: .returnAddress(0x10049), framePointer: 0x8000, activation: 0),
            Frame(address: .returnAddress(0x50000), framePointer: 0x9020, activation: 1),
        ], error: .framePointerMovedBackwards(fp: 0x9020, olderFP: 0x10)))
    }

    @Test("a backtrace follows the documented schema")
    func golden() throws {
        #expect(JSONFormatter().json(try trace()).rendered() == """
            {
              "complete": false,
              "truncation": null,
              "error": {"rule": "frame-pointer-moved-backwards", "message": "frame at 0x9020 links to a lower address 0x10; older frames must be higher"},
              "frames": [
                {"index": 0, "activation": 0, "kind": "pc", "address": "0x10012", "fp": "0x7ff0", "registered": true, "code": "wasm-function", "module": "m", "function_index": 1, "function_name": "_ZN4core9panicking5panic17h0123456789abcdefE", "demangled_name": "core::panicking::panic::h0123456789abcdef", "module_offset": 36, "function_offset": 4},
                {"index": 1, "activation": 0, "kind": "return-address", "address": "0x10049", "fp": "0x8000", "registered": true, "code": "wasm-function", "module": "m", "function_index": 2, "function_name": null, "demangled_name": null, "module_offset": 53, "function_offset": 5},
                {"index": 2, "activation": 1, "kind": "return-address", "address": "0x50000", "fp": "0x9020", "registered": false, "code": null, "module": null, "function_index": null, "function_name": null, "demangled_name": null, "module_offset": null, "function_offset": null}
              ]
            }
            """)
    }

    @Test("JSON keeps every frame of a run that text folds")
    func keepsEveryFrame() throws {
        let function = CodeFunction(index: 2, name: "recurse", codeRange: 0..<16, bodyOffset: 0, addressMap: [])
        let frames = (0..<500).map { index in
            SymbolicatedFrame(frame: Frame(address: .returnAddress(UInt(0x1000 + index)), framePointer: 0, activation: 0),
                              symbol: FrameSymbol(moduleName: "traps", function: function, moduleOffset: 0x96))
        }
        let backtrace = SymbolicatedBacktrace(frames: frames)
        #expect(backtrace.rendered().split(separator: "\n").count == 1)
        let document = try JSONSerialization.jsonObject(with: Data(JSONFormatter().json(backtrace).rendered().utf8))
        #expect(((document as? [String: Any])?["frames"] as? [Any])?.count == 500)
    }
}
