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
///   an i32 code;
/// * `new_object` makes a host object with an i32 id and returns an
///   externref to it; `object_id` returns an externref's id (-1 for null);
/// * `gc` runs the collector (roots: the wasm frames' stack maps and the
///   host's handles), printing the roots with `--print-roots`.
struct HostModule {
    /// Where the output goes (standard output by default).
    var write: (String) -> Void = { print($0) }
    /// How `backtrace` prints.
    var format: OutputFormat = .text
    /// Whether `gc` prints the roots it found.
    var printRoots = false
    /// Called at `backtrace` and `backtrace_all` (captures), and before
    /// `trap` fails (a host failure leaves no signal snapshot).
    var onBacktrace: ((Caller, _ hybrid: Bool) -> Void)?
    var onHostFailure: ((Caller) -> Void)?

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
        let onBacktrace = self.onBacktrace
        let onHostFailure = self.onHostFailure
        switch (name, signature.parameters, signature.results) {
        case ("backtrace", [], []):
            return .host(HostFunction(signature: signature) { caller, _ in
                onBacktrace?(caller, false)
                let trace = caller.backtrace()
                switch format {
                case .text: write("wasm backtrace:\n" + trace.text())
                case .json: write(trace.json.rendered())
                }
                return []
            })
        case ("backtrace_all", [], []):
            return .host(HostFunction(signature: signature) { caller, _ in
                onBacktrace?(caller, true)
                write("hybrid backtrace:\n" + (try OracleSession.hybridBacktrace(caller)).text())
                return []
            })
        case ("new_object", [.i32], [.externref]):
            return .host(HostFunction(signature: signature) { caller, arguments in
                guard case .i32(let id) = arguments[0] else { return [] }
                return [.externref(caller.store.externref(for: HostObject(id: id)))]
            })
        case ("object_id", [.externref], [.i32]):
            return .host(HostFunction(signature: signature) { caller, arguments in
                guard case .externref(let reference?) = arguments[0],
                      let object = caller.store.object(for: reference) as? HostObject
                else { return [.i32(-1)] }
                return [.i32(object.id)]
            })
        case ("gc", [], []):
            let printRoots = self.printRoots
            return .host(HostFunction(signature: signature) { caller, _ in
                let report = try caller.store.collectGarbage()
                if printRoots { write(HostModule.describe(report, store: caller.store)) }
                return []
            })
        case ("trap", [], []), ("trap", [.i32], []):
            return .host(HostFunction(signature: signature) { caller, arguments in
                onHostFailure?(caller)
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

/// What `host.new_object` makes.
final class HostObject {
    let id: Int32
    init(id: Int32) { self.id = id }
}

extension HostModule {
    /// The roots of a collection, one per line, newest frame first.
    static func describe(_ report: CollectionReport, store: Store) -> String {
        var lines = ["gc: \(report.stackRoots.count) roots in wasm frames, \(report.hostRoots.count) held by the host; "
                     + "\(report.freed.count) objects freed, \(report.liveObjects) alive"]
        for root in report.stackRoots {
            let frame = SymbolicatedBacktrace.line(index: root.frameIndex, frame: store.registry.symbolicate(root.frame))
            let slot = Int(bitPattern: root.slotAddress) - Int(bitPattern: root.frame.framePointer)
            let object = (store.object(for: ExternRef(handle: UInt64(root.value))) as? HostObject).map { " (object \($0.id))" } ?? ""
            lines.append("\(frame)    fp\(slot) = externref \(root.value)\(object)")
        }
        return lines.joined(separator: "\n")
    }
}
