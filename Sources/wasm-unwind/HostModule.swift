import Foundation
import UnwindOracle
import Verification
import WasmJIT
import WasmUnwind
import UnwindReports

/// The built-in import module `host`, available to every module `run`
/// executes:
///
/// * `call:<export>` calls that export of the importing instance with the
///   same arguments and returns its results (host -> wasm re-entry, a new
///   activation);
/// * `catch:<export>` calls it the same way, returning an i32: 0 if it
///   returned, 1 if it trapped (the trap is caught here, in the host);
/// * `backtrace` reports the current wasm backtrace;
/// * `backtrace_all` reports the hybrid backtrace: every frame on the
///   stack, host frames named by libunwind, wasm frames from the walk;
/// * `print_i32`, `print_i64` report their argument;
/// * `trap` fails (a host function that returns an error), optionally with
///   an i32 code;
/// * `new_object` makes a host object with an i32 id and returns an
///   externref to it; `object_id` returns an externref's id (-1 for null);
/// * `gc` runs the collector (roots: the wasm frames' stack maps and the
///   host's handles), reporting its roots with `--print-roots`;
/// * `crash` crashes the process in host code — 0: a store through a null
///   pointer (SIGSEGV), 1: `abort()` (SIGABRT) — for debugging a crashed
///   process and its core file (docs/debugging.md).
///
/// Reports are `RunEvent`s handed to `emit`; the command decides how they
/// are written. An import of a known name with a signature the host does
/// not offer is an error that says both signatures.
struct HostModule {
    /// Where reports go.
    var emit: (RunEvent) -> Void = { _ in }
    /// Whether `gc` reports the roots it found.
    var printRoots = false
    /// Called at `backtrace` and `backtrace_all` (captures), and before
    /// `trap` fails (a host failure leaves no signal snapshot).
    var onBacktrace: ((Caller, _ hybrid: Bool) -> Void)?
    var onHostFailure: ((Caller) -> Void)?

    /// The signatures each function offers.
    static let offered: [String: [Signature]] = [
        "backtrace": [Signature(parameters: [], results: [])],
        "backtrace_all": [Signature(parameters: [], results: [])],
        "new_object": [Signature(parameters: [.i32], results: [.externref])],
        "object_id": [Signature(parameters: [.externref], results: [.i32])],
        "gc": [Signature(parameters: [], results: [])],
        "trap": [Signature(parameters: [], results: []), Signature(parameters: [.i32], results: [])],
        "print_i32": [Signature(parameters: [.i32], results: [])],
        "print_i64": [Signature(parameters: [.i64], results: [])],
        "crash": [Signature(parameters: [.i32], results: [])],
    ]

    /// A `host` import the host does not offer with that signature.
    struct SignatureError: Error, CustomStringConvertible {
        var name: String
        var offered: [Signature]
        var imported: Signature
        var description: String {
            "host::\(name) expects \(offered.map(\.description).joined(separator: " or ")), the module imports it as \(imported)"
        }
    }

    func resolve(module: String, name: String, signature: Signature) throws -> Imports.Definition? {
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
        if name.hasPrefix("catch:") {
            let export = String(name.dropFirst("catch:".count))
            guard signature.results == [.i32] else {
                throw CommandError("host::\(name) returns an i32 (0: returned, 1: trapped); the module imports it as \(signature)")
            }
            return .host(HostFunction(signature: signature) { caller, arguments in
                guard let function = caller.export(export) else {
                    throw CommandError("host.catch: the calling instance has no export `\(export)`")
                }
                do {
                    _ = try function.call(arguments)
                    return [.i32(0)]
                } catch is Trap {
                    return [.i32(1)]
                }
            })
        }
        guard let offered = Self.offered[name] else { return nil }
        guard offered.contains(signature) else {
            throw SignatureError(name: name, offered: offered, imported: signature)
        }
        let emit = self.emit
        let onBacktrace = self.onBacktrace
        let onHostFailure = self.onHostFailure
        let printRoots = self.printRoots
        switch name {
        case "backtrace":
            return .host(HostFunction(signature: signature) { caller, _ in
                onBacktrace?(caller, false)
                let backtrace = caller.backtrace()
                emit(.backtrace(backtrace, sourceSymbols: backtrace.sourceSymbols))
                return []
            })
        case "backtrace_all":
            return .host(HostFunction(signature: signature) { caller, _ in
                onBacktrace?(caller, true)
                emit(.hybrid(try OracleSession.hybridBacktrace(caller)))
                return []
            })
        case "new_object":
            return .host(HostFunction(signature: signature) { caller, arguments in
                guard case .i32(let id) = arguments[0] else { return [] }
                return [.externref(caller.store.externref(for: HostObject(id: id)))]
            })
        case "object_id":
            return .host(HostFunction(signature: signature) { caller, arguments in
                guard case .externref(let reference?) = arguments[0],
                      let object = caller.store.object(for: reference) as? HostObject
                else { return [.i32(-1)] }
                return [.i32(object.id)]
            })
        case "gc":
            return .host(HostFunction(signature: signature) { caller, _ in
                let report = try caller.store.collectGarbage()
                if printRoots { emit(.collection(HostModule.summary(report, store: caller.store))) }
                return []
            })
        case "trap":
            return .host(HostFunction(signature: signature) { caller, arguments in
                onHostFailure?(caller)
                throw HostTrapError(code: arguments.first)
            })
        case "crash":
            return .host(HostFunction(signature: signature) { _, arguments in
                guard case .i32(let how) = arguments[0] else { return [] }
                HostModule.crash(how)
            })
        default:  // print_i32, print_i64
            return .host(HostFunction(signature: signature) { _, arguments in
                HostModule.print(arguments[0], emit: emit)
                return []
            })
        }
    }

    /// `host.print_i32` and `host.print_i64`. A named function (not only a
    /// closure), so a debugger can stop in it: docs/debugging.md breaks here.
    @inline(never)
    static func print(_ value: Value, emit: (RunEvent) -> Void) {
        emit(.printed(type: value.kind.description, value: value.description))  // debugging.md: host print
    }

    /// `host.crash`: dies in host code, as a bug in a host function would.
    @inline(never)
    static func crash(_ how: Int32) -> Never {
        if how == 1 { abort() }
        let null = UnsafeMutablePointer<Int32>(bitPattern: Int(getpagesize()) / 2)!  // in the unmapped first page
        null.pointee = how
        fatalError("host.crash: the store through \(null) did not fault")
    }

    /// A collection as a report: each root with its frame and object.
    static func summary(_ report: CollectionReport, store: Store) -> CollectionSummary {
        CollectionSummary(
            stackRoots: report.stackRoots.map { root in
                let object = (store.object(for: ExternRef(handle: UInt64(root.value))) as? HostObject).map { "object \($0.id)" }
                return RootReport(root: root, frame: store.registry.symbolicate(root.frame), object: object)
            },
            hostRootCount: report.hostRoots.count, freedCount: report.freed.count, aliveCount: report.liveObjects)
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
