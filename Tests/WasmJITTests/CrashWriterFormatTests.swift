import CWasmTools
import Foundation
import JITCapture
import StackCapture
import Testing
import WasmJIT
import WasmJITTools
import WasmUnwind

/// The capture format has two writers: StackCapture's, in Swift, and the
/// crash writer's, in C, run from the signal handler. Both take their
/// numbers from one header; this checks that what the C writer writes
/// parses, field for field, as the Swift writer's capture of the same stack.
@Suite("The C crash writer's captures")
struct CrashWriterFormatTests {
    @Test("a capture the C writer wrote at a host call parses field for field like the Swift writer's of the same stack")
    func sameFieldsAsSwift() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("crash-writer-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("c.capture").path

        // The post-mortem descriptor lists the modules: the C writer copies
        // their images from there.
        let engine = Engine(publishing: ToolPublishing(postMortem: true))
        let store = Store(engine: engine)
        var imports = Imports()
        var swiftCapture: CaptureFile?
        var written: Int32 = -1
        imports.define(module: "host", name: "capture", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
            swiftCapture = LiveCapture.atHostCall(caller)
            written = wu_crash_capture_set_path(path)
            var here = 0
            let sp = withUnsafeMutablePointer(to: &here) { UInt64(UInt(bitPattern: $0)) }
            wu_crash_capture_write(SIGSEGV, sp)
            _ = wu_crash_capture_set_path(nil)
            return []
        }))
        imports.define(module: "host", name: "call", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
            _ = try caller.instance.export("inner")!.call([])
            return []
        }))
        let instance = try Instance(store: store, module: try Module(engine: engine, text: """
            (module $pair
              (import "host" "capture" (func $capture))
              (import "host" "call" (func $call))
              (func $leaf (call $capture))
              (func (export "inner") (call $leaf))
              (func $middle (call $call))
              (func (export "outer") (call $middle)))
            """), imports: imports)
        _ = try instance.export("outer")!.call([])
        #expect(written == 0)

        let swift = try #require(swiftCapture)
        let c = try CaptureFile(parsing: try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(c.architecture == swift.architecture)
        #expect(c.note == "written by the signal handler at a crash outside wasm")
        // Two activations (host -> outer -> host -> inner -> capture),
        // row for row: start, fp and entry fp alike; the C writer, which
        // has no stack maps in the handler, gives each frame's fp as its sp.
        #expect(c.activations.count == 2 && swift.activations.count == 2)
        for (mine, theirs) in zip(c.activations, swift.activations) {
            #expect(mine.start == theirs.start)
            #expect(mine.startFramePointer == theirs.startFramePointer)
            #expect(mine.entryFramePointer == theirs.entryFramePointer)
            #expect(mine.startStackPointer == theirs.startFramePointer)
        }
        #expect(c.registers[16] == swift.registers[16] && c.registers[6] == swift.registers[6])
        #expect(c.registers[7] == swift.registers[6])
        // The stack: from the newest fp to above the outermost entry, the
        // same bytes as the Swift capture's over that range.
        let cStack = try #require(c.stack.first), swiftStack = try #require(swift.stack.first)
        #expect(c.stack.count == 1 && cStack.range.upperBound == swiftStack.range.upperBound)
        let offset = Int(cStack.baseAddress - swiftStack.baseAddress)
        #expect(offset >= 0 && Array(swiftStack.bytes[offset...]) == cStack.bytes)
        // The modules: the store's, byte for byte (the descriptor may list
        // other tests' modules too).
        for module in swift.modules {
            let listed = c.modules.first { $0.codeBase == module.codeBase }
            #expect(listed == module, "module at \(module.codeBase)")
        }
        // And a reader finds the same frames in both.
        let fromC = try CapturedStack(c), fromSwift = try CapturedStack(swift)
        #expect(fromC.registry.symbolicate(fromC.backtrace()).frames.map(\.description)
                == fromSwift.registry.symbolicate(fromSwift.backtrace()).frames.map(\.description))
        #expect(fromC.backtrace().frames.count == 4)
    }
}
