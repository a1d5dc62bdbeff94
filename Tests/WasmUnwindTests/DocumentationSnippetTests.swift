import Foundation
import Testing

/// The snippets of the DocC article "Embedding WasmUnwind in your JIT"
/// (Snippets/, built with the package) run and do what the article says.
@Suite("The documentation's snippets")
struct DocumentationSnippetTests {
    /// Runs the snippet `name`, built next to this test bundle.
    func run(_ name: String) throws -> String {
        let bundle = Bundle.allBundles.first { $0.bundlePath.hasSuffix(".xctest") }?.bundleURL
            ?? URL(fileURLWithPath: CommandLine.arguments[0])
        let process = Process()
        process.executableURL = bundle.deletingLastPathComponent().appendingPathComponent(name)
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = output.fileHandleForReading.readDataToEndOfFile()
        let problems = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(String(decoding: problems, as: UTF8.self))")
        return String(decoding: text, as: UTF8.self)
    }

    @Test("records: the offsets a code generator stores to, and an activation")
    func records() throws {
        let output = try run("EmbeddingRecords")
        #expect(output.contains("stackLimit +0, lastWasmExitFP +8, lastWasmExitPC +16, lastWasmEntryFP +24\n"))
        #expect(output.contains(", depth 1\n"))
    }

    @Test("registry: kinds, names, offsets and stack maps by address")
    func registry() throws {
        #expect(try run("EmbeddingRegistry") == "wasm function entry trampoline\ndemo!main 0x24\n[-16]\n")
    }

    @Test("roots: the reference in the caller's slot, found through the stack map of its call's return address")
    func roots() throws {
        #expect(try run("EmbeddingRoots") == "frame 1: slot 0x7028 holds 0xabcd\n")
    }

    @Test("end to end: hand-assembled machine code, a backtrace at a host call, a real trap walked in a SIGILL handler that resumes the host")
    func endToEnd() throws {
        #expect(try run("EmbeddingEndToEnd") == """
            at the host call:
                0:     0x33 - demo!inner
                1:     0x22 - demo!outer
            trapped:
                0:     0x35 - demo!inner
                1:     0x22 - demo!outer

            """)
    }

    @Test("walk: two frames from copied stack bytes, in Wasmtime's layout and field by field")
    func walk() throws {
        #expect(try run("EmbeddingWalk") == """
                0:     0x23 - demo!inner
                1:     0x35 - demo!outer
            inner 1 35 65557
            outer 2 53 65621

            """)
    }

    @Test("signal handler: a complete empty walk, and an error for registers that are no wasm frame")
    func signalHandler() throws {
        #expect(try run("EmbeddingSignalHandler") == """
            frames: 0, complete: true
            frames: 0, error: activation 0 starts at frame pointer 0 [null-frame-pointer]

            """)
    }
}
