import ArgumentParser
import Foundation
import Verification
import WasmJIT
import WasmUnwind

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the built-in example: a wasm backtrace across nested host <-> wasm calls.",
        discussion: """
            Runs the built-in demo module (the text of fixtures/demo/nested.wat), or \
            FILE, whose `main` export reaches the host, which calls back into wasm, \
            twice, so three activations are on the stack when the innermost wasm \
            function asks the host for a backtrace.
            """)

    @Argument(help: "A module to run instead of the built-in one.")
    var file: String?

    func run() throws {
        // Modules' CFI is registered with libunwind, for host.backtrace_all.
        let engine = OracleSession(observeTraps: false).engine
        let store = Store(engine: engine)
        let sink = TextSink()
        var host = HostModule()
        host.emit = { sink.emit($0) }
        var imports = Imports()
        imports.fallback = host.resolve
        let module: Module
        if let file {
            module = try loadModule(engine: engine, path: file)
        } else {
            module = try Module(engine: engine, text: DemoModule.source)
        }
        let instance = try Instance(store: store, module: module, imports: imports)
        guard let main = instance.export("main") else { throw CommandError("\(file ?? "the demo module") exports no `main`") }
        output("""
            Three activations: wasm main -> host -> wasm level2 -> host -> wasm level3 -> host.backtrace.
            Each line is a wasm frame, newest first: index, module offset of the call, module!function.
            The host frames between activations are skipped using the records the trampolines wrote.

            """)
        let results = try main.call([.i32(7)])
        output("\nmain(7) returned \(results.map(\.description).joined(separator: ", "))")
    }
}
