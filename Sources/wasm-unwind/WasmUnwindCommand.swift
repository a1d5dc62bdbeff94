import ArgumentParser

@main
struct WasmUnwindCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wasm-unwind",
        abstract: "Backtraces of WebAssembly running as native JIT code.",
        discussion: """
            Runs wasm on a baseline JIT whose trampolines record every host <-> wasm \
            transition, and walks the frame-pointer chain between those records to \
            print exact wasm backtraces.
            """,
        subcommands: [RunCommand.self, DemoCommand.self, DumpCommand.self, CompileCommand.self, VerifyCommand.self])
}
