import Foundation
import UnwindOracle
import Verification
import WasmJIT

/// The built-in import module `host`, available to every module `run`
/// executes:
///
/// * `call:<export>` calls that export of the importing instance with the
///   same arguments and returns its results (host -> wasm re-entry, a new
///   activation);
/// * `backtrace` prints the current wasm backtrace, preceded by
///   `wasm backtrace:`;
/// * `backtrace_all` prints the hybrid backtrace: every frame on the stack,
///   host frames named by libunwind, wasm frames from the walk;
/// * `print_i32`, `print_i64` print their argument;
/// * `trap` fails (a host function that returns an error), optionally with
///   an i32 code.
struct HostModule {
    /// Where the output goes (standard output by default).
    var write: (String) -> Void = { print($0) }
    /// How `backtrace` prints.
    var format: OutputFormat = .text

    func resolve(module: String, name: String, signature: Signature) -> Imports.Definition? {
        guard module == "host" else { return nil }
        if name.hasPrefix("call:") {
            let export = String(name.dropFirst("call:".count))
            return .host(HostFunction(signature: signature) { caller, arguments in
                guard let function = caller.export(export) else {
                    throw CommandError("host.call: the calling instance has no export `\(export)`")
                }
                return try function.call(arguments)
            })
        }
        let write = self.write
        let format = self.format
        switch (name, signature.parameters, signature.results) {
        case ("backtrace", [], []):
            return .host(HostFunction(signature: signature) { caller, _ in
                let trace = caller.backtrace()
                switch format {
                case .text: write("wasm backtrace:\n" + trace.text())
                case .json: write(trace.json.rendered())
                }
                return []
            })
        case ("backtrace_all", [], []):
            return .host(HostFunction(signature: signature) { caller, _ in
                write("hybrid backtrace:\n" + (try OracleSession.hybridBacktrace(caller)).text())
                return []
            })
        case ("trap", [], []), ("trap", [.i32], []):
            return .host(HostFunction(signature: signature) { _, arguments in
                throw HostTrapError(code: arguments.first)
            })
        case ("print_i32", [.i32], []), ("print_i64", [.i64], []):
            return .host(HostFunction(signature: signature) { _, arguments in
                write(arguments[0].description)
                return []
            })
        default:
            return nil
        }
    }
}

/// What `host.trap` throws.
struct HostTrapError: Error, CustomStringConvertible {
    let code: Value?
    var description: String {
        "host.trap called" + (code.map { " with \($0)" } ?? "")
    }
}
