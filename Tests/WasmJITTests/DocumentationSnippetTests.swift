import Testing

/// The snippets of the DocC article "Embedding WasmUnwind in your JIT"
/// (Snippets/, built with the package) run and do what the article says.
@Suite("The documentation's snippets")
struct DocumentationSnippetTests {
    func run(_ name: String) throws -> String {
        let result = try runChild(PackagePaths.executable(name), [])
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdout
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

    @Test("walk: two frames from copied stack bytes, in Wasmtime's layout and as JSON")
    func walk() throws {
        let output = try run("EmbeddingWalk")
        #expect(output.hasPrefix("    0:     0x23 - demo!inner\n    1:     0x35 - demo!outer\n{\n"))
    }

    @Test("signal handler: a complete empty walk, and an error for registers that are no wasm frame")
    func signalHandler() throws {
        #expect(try run("EmbeddingSignalHandler") == """
            frames: 0, complete: true
            frames: 0, error: activation 0 starts at frame pointer 0 [null-frame-pointer]

            """)
    }
}
