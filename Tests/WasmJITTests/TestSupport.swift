import Foundation
import Testing
import Verification
import WasmJIT

/// A store with the given host functions under module "host", for one test.
struct Harness {
    let engine: Engine
    let store: Store
    var imports = Imports()

    init(_ exitRecording: ExitRecording = .trampoline) {
        self.init(engine: Engine(configuration: Engine.Configuration(exitRecording: exitRecording)))
    }

    init(engine: Engine) {
        self.engine = engine
        store = Store(engine: engine)
    }

    /// Compiles and instantiates `text` with the imports defined so far.
    func instantiate(_ text: String) throws -> Instance {
        try Instance(store: store, module: Module(engine: engine, text: text), imports: imports)
    }

    mutating func define(_ name: String, _ parameters: [ValueKind] = [], _ results: [ValueKind] = [],
                         _ body: @escaping (Caller, [Value]) throws -> [Value]) {
        imports.define(module: "host", name: name,
                       .host(HostFunction(signature: Signature(parameters: parameters, results: results), body: body)))
    }
}

/// Collects backtraces from host calls.
final class Recorder: @unchecked Sendable {
    var traces: [SymbolicatedBacktrace] = []
}

/// The (module offset, module!function) pairs of a trace, for comparing
/// with `wasm-objdump -d`.
func describe(_ trace: SymbolicatedBacktrace) -> [String] {
    trace.frames.map { frame in
        let symbol = frame.symbol
        let offset = symbol?.moduleOffset.map { "0x" + String($0, radix: 16) } ?? "?"
        let name = symbol?.functionName ?? symbol?.functionIndex.map { "<wasm function \($0)>" } ?? "?"
        return "\(offset) \(symbol?.moduleName ?? "<unknown>")!\(name)"
    }
}

/// Paths inside the package, for fixtures and the CLI binary.
enum PackagePaths {
    // (Built through Tools/Tests, a link to Tests: resolved, this file is in
    // the package's own Tests.)
    static let root: URL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func fixture(_ path: String) -> String { root.appendingPathComponent("fixtures/" + path).path }

    /// The `wasm-unwind` executable built next to the test bundle.
    static var cli: String { executable("wasm-unwind") }

    /// An executable of this package, built next to the test bundle.
    static func executable(_ name: String) -> String {
        let bundle = Bundle.allBundles.first { $0.bundlePath.hasSuffix(".xctest") }?.bundleURL
            ?? URL(fileURLWithPath: CommandLine.arguments[0])
        return bundle.deletingLastPathComponent().appendingPathComponent(name).path
    }
}

/// Runs the CLI in the package root (or `directory`) and returns (status,
/// stdout, stderr).
func runCLI(_ arguments: [String], directory: URL? = nil, standardOutput: FileHandle? = nil)
    throws -> (status: Int32, stdout: String, stderr: String)
{
    let result = try runChild(PackagePaths.cli, arguments, directory: directory ?? PackagePaths.root,
                              standardOutput: standardOutput)
    return (result.status, result.stdout, result.stderr)
}

/// A fresh temporary directory for one test, removed by the caller.
func temporaryDirectory(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-unwind-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// For children whose crash a test provokes and only needs the signal of:
/// the Swift runtime's backtracer is not started (with several threads
/// crashing at once it has outlived the child and kept its pipes open).
let noSwiftBacktracer = ["SWIFT_BACKTRACE": "enable=no"]

/// Runs an executable to its end: exit status or the signal that killed it.
/// With `standardOutput`, the child writes there instead of to a pipe (its
/// stdout is then "").
func runChild(_ path: String, _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil,
              standardOutput: FileHandle? = nil)
    throws -> (status: Int32, signal: Int32?, stdout: String, stderr: String)
{
    let result = try ChildProcess.run(path, arguments, environment: environment, directory: directory,
                                      standardOutput: standardOutput)
    return (result.status, result.signal, result.stdout, result.stderr)
}

/// A /proc file's contents (their size is 0 to stat, so read to the end).
func readProcFile(_ path: String) -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
    defer { try? handle.close() }
    return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
}

/// The exit-recording modes every backtrace, trap, stack-map and oracle test
/// runs in.
let exitRecordingModes: [ExitRecording] = [.trampoline, .inline]

/// The fixtures a build script of scripts/ writes (compiled by a real
/// toolchain), built once per test process into a directory of its own.
final class FixtureBuild: Sendable {
    let script: String
    let built: Result<String, CProgramTests.BuildError>

    init(_ script: String) {
        self.script = script
        let name = script.replacingOccurrences(of: "build-", with: "").replacingOccurrences(of: ".sh", with: "")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-unwind-\(name)-\(getpid())").path
        do {
            let result = try runChild("/bin/bash", [PackagePaths.root.appendingPathComponent("scripts/\(script)").path, directory])
            built = result.status == 0 ? .success(directory) : .failure(CProgramTests.BuildError(output: result.stderr + result.stdout))
        } catch {
            built = .failure(CProgramTests.BuildError(output: "\(error)"))
        }
    }

    /// The directory, or the build's output as an issue of the test.
    func directory() throws -> String {
        switch built {
        case .success(let directory): return directory
        case .failure(let error):
            Issue.record("scripts/\(script) failed (make toolchains installs the toolchains):\n\(error.output)")
            throw error
        }
    }
}
