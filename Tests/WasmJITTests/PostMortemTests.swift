import CWasmUnwindABI
import Foundation
import StackCapture
import Testing
import WasmJIT
import WasmUnwind

/// The post-mortem descriptor as a reader of this process's memory (or of a
/// core file of it) finds it.
@Suite("The post-mortem descriptor", .serialized)
struct PostMortemTests {
    /// The descriptor as it is now.
    static var descriptor: wu_debug_descriptor { wu_debug_descriptor_address().pointee }
    var descriptor: wu_debug_descriptor { Self.descriptor }

    /// The descriptor's modules, newest first.
    static func modules() -> [wu_debug_module] {
        var result: [wu_debug_module] = []
        var next = descriptor.modules
        while let entry = next {
            result.append(entry.pointee)
            next = entry.pointee.next
        }
        return result
    }

    static func threads() -> [wu_debug_thread] {
        var result: [wu_debug_thread] = []
        var next = descriptor.threads
        while let entry = next {
            result.append(entry.pointee)
            next = entry.pointee.next
        }
        return result
    }

    @Test("the header: magic, version, size; an even generation")
    func header() {
        #expect(descriptor.magic == WU_DEBUG_DESCRIPTOR_MAGIC)
        #expect(descriptor.version == UInt32(WU_DEBUG_DESCRIPTOR_VERSION))
        #expect(descriptor.size == UInt32(MemoryLayout<wu_debug_descriptor>.size))
        #expect(descriptor.generation % 2 == 0)
        #expect(MemoryLayout<wu_debug_descriptor>.size == 56 && MemoryLayout<wu_debug_module>.size == 48
                && MemoryLayout<wu_debug_thread>.size == 32, "docs/post-mortem.md gives these sizes")
    }

    @Test("a module is listed while it lives, with an image that parses as a capture of it; the generation moves by 2 per change and is even between")
    func moduleListed() throws {
        let engine = Engine(configuration: Engine.Configuration(postMortem: true))
        let before = (count: descriptor.module_count, generation: descriptor.generation)
        var module: Module? = try Module(engine: engine, text: try String(contentsOfFile: PackagePaths.fixture("programs/nested.wat"), encoding: .utf8))
        #expect(descriptor.module_count == before.count + 1)
        // Other tests' threads may be listed meanwhile: at least one change.
        #expect(descriptor.generation >= before.generation + 2 && descriptor.generation % 2 == 0)
        let base = UInt64(module!.code.baseAddress)
        let entry = try #require(Self.modules().first { $0.code_start == base })
        #expect(entry.code_end == base + UInt64(module!.code.size))
        let image = [UInt8](UnsafeBufferPointer(start: entry.image, count: Int(entry.image_size)))
        let capture = try CaptureFile(parsing: image)
        let listed = try #require(capture.modules.first)
        #expect(listed.name == "nested" && listed.codeBase == module!.code.baseAddress)
        #expect(listed.functions.map(\.name) == module!.codeModule.functions.map(\.name))
        module = nil
        #expect(descriptor.module_count == before.count)
        #expect(descriptor.generation >= before.generation + 4 && descriptor.generation % 2 == 0)
        #expect(!Self.modules().contains { $0.code_start == base })
        // Off by default.
        _ = try Module(engine: Engine(), text: "(module (func))")
        #expect(descriptor.module_count == before.count)
    }

    @Test("a thread is listed once it enters wasm, with where its activation chain starts; gone when it exits")
    func threadListed() throws {
        let engine = Engine()
        let store = Store(engine: engine)
        nonisolated(unsafe) var seen: (tid: Int64, head: UInt, current: UInt)?
        var imports = Imports()
        imports.define(module: "host", name: "look", .host(HostFunction.slots(signature: Signature(parameters: [], results: [])) { _, _ in
            let tid = Int64(wu_gettid())
            let entry = Self.threads().first { $0.tid == tid }
            seen = (tid, UInt(bitPattern: entry?.activation_head?.pointee), UInt(bitPattern: wu_current_activation()))
        }))
        let module = try Module(engine: engine, text: #"(module (import "host" "look" (func $look)) (func (export "f") (call $look)))"#)
        let instance = try Instance(store: store, module: module, imports: imports)
        nonisolated(unsafe) let function = try #require(instance.export("f"))
        let tid = try runOnThread(stackSize: 1 << 20) { () -> Int64 in
            _ = try function.call([])
            return Int64(wu_gettid())
        }
        // The thread ends after handing back its result.
        for _ in 0..<200 where Self.threads().contains(where: { $0.tid == tid }) { usleep(5_000) }
        let observed = try #require(seen)
        #expect(observed.tid == tid)
        #expect(observed.head != 0 && observed.head == observed.current, "the listed head is the thread's newest activation")
        #expect(!Self.threads().contains { $0.tid == tid }, "the exited thread is still listed")
    }

    @Test("the descriptor is in the executable's symbol table, where a reader of a core file looks it up")
    func symbol() throws {
        let result = try #require(try runTool("readelf", ["-W", "-s", PackagePaths.cli]), "readelf is not installed")
        let line = result.stdout.split(separator: "\n").first { $0.hasSuffix(" wasm_unwind_debug_descriptor") }
        #expect(line?.contains("OBJECT") == true && line?.contains("GLOBAL") == true, "\(line ?? "no symbol")")
    }
}
