import CWasmUnwindABI
import WasmUnwind
import CWasmRuntime

/// An exception tag: what a `throw` names and a `catch` matches. Two tags
/// are the same only if they are the same object — an imported tag is the
/// exporter's; each instantiation of a module defines new ones.
public final class Tag {
    /// The exception's payload types: the tag type's parameters.
    public let payload: [ValueKind]
    /// The tag's type, for link-time matching.
    let type: ModuleDescription.TypeIdentity
    /// The store the tag belongs to.
    let binding = StoreBinding()

    /// A tag the host defines, for modules to import (or for host
    /// functions to throw exceptions of).
    public convenience init(payload: [ValueKind]) {
        let signature = Signature(parameters: payload, results: [])
        self.init(payload: payload, type: ModuleDescription.TypeIdentity(group: [signature], position: 0))
    }

    init(payload: [ValueKind], type: ModuleDescription.TypeIdentity) {
        self.payload = payload
        self.type = type
    }

    /// The address generated code and the unwinder compare tags by.
    var identity: UnsafeRawPointer { UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()) }
}

/// A wasm exception: a tag and its payload. Wasm code throws it with
/// `throw`, holds it as an `exnref` after `catch_ref`, rethrows it with
/// `throw_ref`. A host function throws one into the calling wasm by
/// throwing it as a Swift error; an exception no wasm frame catches leaves
/// `Func.call` as a `Trap` whose reason is `.exception` (rethrowing that
/// trap from a host function throws the exception on into its caller, as
/// Wasmtime does).
public final class WasmException: Error, CustomStringConvertible {
    public let tag: Tag
    /// The payload, one value per `tag.payload` type.
    public let payload: [Value]
    /// The exception's handle in its store's object table while wasm may
    /// hold it as an `exnref` (0: none yet).
    var handle: UInt64 = 0
    /// The wasm backtrace at the exception's last `throw` or `throw_ref`
    /// (the frames at that throw, across every activation), taken when no
    /// frame of that activation caught it; kept while it passes on through
    /// host frames, as Wasmtime keeps it.
    public internal(set) var backtrace: SymbolicatedBacktrace?

    /// An exception of `tag` with `payload`, which must match the tag's
    /// payload types.
    public init(tag: Tag, payload: [Value]) throws {
        guard payload.map(\.kind) == tag.payload else {
            throw CallError.argumentMismatch(expected: tag.payload, found: payload)
        }
        self.tag = tag
        self.payload = payload
    }

    init(tag: Tag, slots: [UInt64]) {
        self.tag = tag
        self.payload = zip(slots, tag.payload).map { Value(slot: $0, kind: $1) }
    }

    /// The payload as 64-bit slots.
    var slots: [UInt64] { payload.map(\.slot) }

    public var description: String {
        "wasm exception (" + payload.map(\.description).joined(separator: ", ") + ")"
    }
}

/// A non-null `exnref`: the handle of a caught exception in a store's
/// object table.
public struct ExnRef: Hashable, Sendable {
    public let handle: UInt64

    public init(handle: UInt64) {
        precondition(handle != 0, "0 is the null reference")
        self.handle = handle
    }
}

extension Store {
    /// The exception behind an `exnref`, if it is still alive.
    public func exception(for reference: ExnRef) -> WasmException? {
        objects.object(ExternRef(handle: reference.handle)) as? WasmException
    }

    /// The `exnref` of `exception` in this store's object table.
    func exnref(for exception: WasmException) -> UInt64 {
        if exception.handle != 0, objects.object(ExternRef(handle: exception.handle)) === exception {
            return exception.handle
        }
        exception.handle = objects.insert(exception).handle
        return exception.handle
    }

    /// The throw: finds the handler of the newest activation that takes an
    /// exception of the tag whose identity is `identity` — walking its
    /// frames from the recorded exit (the throwing call) with the
    /// frame-pointer walker and looking each return address up in its
    /// call-site table — writes the payload (`count` values, `payload(i)`)
    /// and, for a `_ref` clause, the `exnref` into the handler's slots, and
    /// returns where to resume. With no handler in the activation, records
    /// the uncaught exception (with the backtrace at the throw) as the
    /// pending failure and returns nil. Allocates nothing on the way to a
    /// plain `catch`.
    func unwind(tag identity: UnsafeRawPointer, count: Int, exception: WasmException?, fromHost: Bool = false,
                payload: (Int) -> UInt64) -> UnsafePointer<wu_resume>? {
        let match: HandlerMatch?
        do {
            match = try findHandler(identity)
        } catch {
            pendingFailure = Trap(reason: .host(error), backtrace: backtrace())
            return nil
        }
        if let onThrow {
            // SAFETY: a tag's identity is the Tag object, which the
            // throwing instance's `tags` keeps.
            let tag = Unmanaged<Tag>.fromOpaque(identity).takeUnretainedValue()
            onThrow(ThrowSite(tag: tag, payload: (0..<count).map { Value(slot: payload($0), kind: tag.payload[$0]) },
                              handler: match))
        }
        func materialized() -> WasmException {
            exception ?? WasmException(tag: Unmanaged<Tag>.fromOpaque(identity).takeUnretainedValue(),
                                       slots: (0..<count).map(payload))
        }
        guard let match else {
            let uncaught = materialized()
            // A wasm throw's backtrace is where it threw; one a host passes
            // on keeps the one it had.
            if !fromHost || uncaught.backtrace == nil { uncaught.backtrace = backtrace() }
            pendingFailure = Trap(reason: .exception(uncaught), backtrace: uncaught.backtrace!)
            // The throwing frames are still on the stack: read in place.
            if coredumpOnTrap && !fromHost { pendingFailure?.coredump = coredump(uncaught.backtrace!, stack: .live) }
            return nil
        }
        // Into the handler frame's slots: value i at payloadSlot - 8i, then
        // the reference. The payload is read first: the throwing frame may
        // be the handler's, and its slots may overlap.
        let kind = match.handler.kind
        // SAFETY: the handler's payload slot lies inside its frame (checked
        // when its stack map was built or read), on this thread's stack.
        let first = UnsafeMutablePointer<UInt64>(bitPattern: UInt(bitPattern: Int(bitPattern: match.frame.framePointer) &+ Int(match.handler.payloadSlot)))!
        let values = kind == .catch || kind == .catchRef ? count : 0
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: max(values, 1)) { buffer in
            for i in 0..<values { buffer[i] = payload(i) }
            for i in 0..<values { (first - i).pointee = buffer[i] }
        }
        if kind.passesReference {
            (first - values).pointee = exnref(for: materialized())
        }
        resumeRecord.pointee = wu_resume(fp: UInt64(match.frame.framePointer), sp: UInt64(match.stackPointer),
                                         pc: UInt64(match.landingPad))
        return UnsafePointer(resumeRecord)
    }

    /// The handler search for the tag whose identity is `identity`.
    func findHandler(_ identity: UnsafeRawPointer) throws(HandlerSearchError) -> HandlerMatch? {
        try registry.findLiveHandler(limits: limits) { handler, frame in
            guard handler.kind.hasTag else { return true }
            // The frame's instance context is saved at [fp - 8].
            let context = UnsafePointer<UnsafePointer<wu_vmctx>>(bitPattern: frame.framePointer &- 8)!.pointee
            return context.pointee.tags[Int(handler.tag)] == identity
        }
    }

    /// Throws `exception` from the newest activation's recorded exit:
    /// `throw_ref`'s, or a host function's (`fromHost`).
    func unwind(_ exception: WasmException, fromHost: Bool) -> UnsafePointer<wu_resume>? {
        let slots = exception.slots
        return unwind(tag: exception.tag.identity, count: slots.count, exception: exception, fromHost: fromHost) { slots[$0] }
    }

    /// Where an exception of `tag` thrown now would resume: the handler
    /// search of a throw from the newest activation's recorded exit (from
    /// a host function: from the wasm frame that called it), without the
    /// throw. Nil: no frame of the activation catches it.
    public func handler(for tag: Tag) throws(HandlerSearchError) -> HandlerMatch? {
        try findHandler(tag.identity)
    }

    /// After a host call failed: if the host threw a wasm exception (or
    /// rethrew one that left a nested call), the throw into the calling
    /// wasm, from the host call's recorded exit.
    func unwindPendingException() -> UnsafePointer<wu_resume>? {
        guard let exception = exceptionInFlight else { return nil }
        exceptionInFlight = nil
        return unwind(exception, fromHost: true)
    }
}

/// A wasm exception at its throw, before it resumes or leaves: what
/// `Store.onThrow` sees. The stack is as it was at the throw (the newest
/// activation's recorded exit is the throwing call), so a capture taken
/// now shows the throw site and the handler frame.
public struct ThrowSite {
    public var tag: Tag
    public var payload: [Value]
    /// Where it resumes, or nil if it leaves the newest activation.
    public var handler: HandlerMatch?
}

/// The C entry points of exceptions that every context holds.
enum ExceptionEntries {
    /// `body` with the store of the instance whose context is `context`
    /// (no reference counting on the way).
    static func withStore<R>(of context: UnsafeMutablePointer<wu_vmctx>?, _ body: (Store) -> R) -> R {
        // SAFETY: compiled code passes the context of the running instance.
        Unmanaged<Instance>.fromOpaque(context!.pointee.instance!)._withUnsafeGuaranteedRef { body($0.store) }
    }

    /// `throw tag` (`wu_vmctx.throw_exception`).
    static let throwException: @convention(c) (UnsafeMutablePointer<wu_vmctx>?, UInt64, UnsafePointer<UInt64>?)
        -> UnsafePointer<wu_resume>? = { context, tagIndex, payload in
            let identity = context!.pointee.tags[Int(tagIndex)]!
            let count = Unmanaged<Tag>.fromOpaque(identity)._withUnsafeGuaranteedRef { $0.payload.count }
            // The payload's slots go down from `payload`, as the operand
            // stack's do.
            return withStore(of: context) { store in
                store.unwind(tag: identity, count: count, exception: nil) { payload![-$0] }
            }
        }

    /// `throw_ref` (`wu_vmctx.throw_ref`); compiled code has checked for null.
    static let throwRef: @convention(c) (UnsafeMutablePointer<wu_vmctx>?, UInt64) -> UnsafePointer<wu_resume>? = {
        context, handle in
        withStore(of: context) { store in
            guard let exception = store.exception(for: ExnRef(handle: handle)) else {
                store.pendingFailure = Trap(reason: .host(ExceptionError.deadReference(handle: handle)),
                                            backtrace: store.backtrace())
                return nil
            }
            return store.unwind(exception, fromHost: false)
        }
    }

    /// `wu_raise_host_failure`'s question: does a frame catch the
    /// exception the failed host call threw?
    static let unwinder: wu_exception_unwinder_fn = { context in
        withStore(of: context) { $0.unwindPendingException() }
    }

    /// Installs the unwinder once per process.
    static let installed: Void = { wu_set_exception_unwinder(unwinder) }()
}

/// An exception operation that found something impossible.
public enum ExceptionError: Error, CustomStringConvertible {
    /// `throw_ref` of a handle whose exception was collected.
    case deadReference(handle: UInt64)

    public var description: String {
        switch self {
        case .deadReference(let handle): return "throw_ref: exnref \(handle) names no live exception"
        }
    }
}
