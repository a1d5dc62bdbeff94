@_spi(Tools) import WasmUnwind

/// The host objects a store's wasm code can refer to. Wasm sees only
/// handles (`ExternRef`); the table owns the objects. Objects stay alive
/// while a handle to them is in a live wasm frame, pinned by the host, or an
/// argument of a host call in progress; `Store.collectGarbage()` frees the
/// rest (mark and sweep over this table).
final class HostObjects {
    private(set) var objects: [UInt64: AnyObject] = [:]
    private var nextHandle: UInt64 = 1
    /// Handles the host holds, with how many times each was pinned.
    private(set) var pinned: [UInt64: Int] = [:]
    /// The externref arguments of each host call in progress.
    var callScopes: [[UInt64]] = []

    func insert(_ object: AnyObject) -> ExternRef {
        let handle = nextHandle
        nextHandle += 1
        objects[handle] = object
        return ExternRef(handle: handle)
    }

    func object(_ reference: ExternRef) -> AnyObject? { objects[reference.handle] }

    func pin(_ reference: ExternRef) { pinned[reference.handle, default: 0] += 1 }

    func unpin(_ reference: ExternRef) {
        guard let count = pinned[reference.handle] else { return }
        pinned[reference.handle] = count > 1 ? count - 1 : nil
    }

    /// Keeps exactly the objects whose handles are in `marked`; returns the
    /// handles freed.
    func sweep(keeping marked: Set<UInt64>) -> [UInt64] {
        let freed = objects.keys.filter { !marked.contains($0) }
        for handle in freed { objects[handle] = nil }
        return freed.sorted()
    }
}

/// What one collection did.
public struct CollectionReport: Sendable {
    /// The references found in wasm frames, newest frame first.
    public var stackRoots: [GCRoot]
    /// Handles kept because the host holds them (pinned, or arguments of a
    /// host call in progress).
    public var hostRoots: [UInt64]
    /// Handles kept because an instance holds them in a table, a global or
    /// an element segment.
    public var instanceRoots: [UInt64]
    /// Objects alive after the collection.
    public var liveObjects: Int
    /// Handles whose objects were freed.
    public var freed: [UInt64]
}

/// A stack slot held a value that is no handle of this store.
public struct CollectionError: Error, CustomStringConvertible {
    public var root: GCRoot
    public var description: String {
        "frame \(root.frameIndex): slot \(hex(root.slotAddress)) holds \(hex(root.value)), which is no live object of this store"
    }
}


extension Store {
    /// A handle wasm can hold for `object`. The object lives until a
    /// collection finds no handle to it.
    public func externref(for object: AnyObject) -> ExternRef { objects.insert(object) }

    /// The object behind a handle, if it is still alive.
    public func object(for reference: ExternRef) -> AnyObject? { objects.object(reference) }

    /// Keeps `reference`'s object alive across collections until `unpin`.
    public func pin(_ reference: ExternRef) { objects.pin(reference) }
    public func unpin(_ reference: ExternRef) { objects.unpin(reference) }

    /// Objects currently in the table.
    public var liveObjectCount: Int { objects.objects.count }

    /// Mark and sweep: marks every handle (`externref` or `exnref`) in a live wasm frame of this
    /// store on this thread (found through the stack maps of the call sites
    /// the frames are suspended at), every pinned handle, every argument of
    /// a host call in progress and every handle in a table, global or
    /// element segment of a live instance of the store, and frees every
    /// other object. (A table or global the host made holds its
    /// references only while an instance imports it; pin them otherwise.) Call it
    /// from a host function (or with no wasm running).
    public func collectGarbage() throws -> CollectionReport {
        let stackRoots = try registry.roots(of: limits)
        var marked = Set<UInt64>()
        for root in stackRoots {
            guard objects.object(ExternRef(handle: UInt64(root.value))) != nil else { throw CollectionError(root: root) }
            marked.insert(UInt64(root.value))
        }
        // The host's: pinned handles, host calls' arguments, and an
        // exception on its way into wasm or out to `Func.call`.
        var hostRoots = Array(objects.pinned.keys) + objects.callScopes.flatMap { $0 }
        for exception in [exceptionInFlight, pendingFailure?.exception].compactMap({ $0 }) where exception.handle != 0 {
            hostRoots.append(exception.handle)
        }
        marked.formUnion(hostRoots)
        // What instances hold in their tables, globals and element segments.
        let instanceRoots = Set(referencesHeldByInstances)
        marked.formUnion(instanceRoots)
        // A live exception keeps the references in its payload alive.
        var pending = Array(marked)
        while let handle = pending.popLast() {
            guard let exception = objects.object(ExternRef(handle: handle)) as? WasmException else { continue }
            for value in exception.payload where value.kind.isCollected && value.slot != 0 {
                if marked.insert(value.slot).inserted { pending.append(value.slot) }
            }
        }
        let freed = objects.sweep(keeping: marked)
        return CollectionReport(stackRoots: stackRoots, hostRoots: Array(Set(hostRoots)).sorted(),
                                instanceRoots: instanceRoots.sorted(),
                                liveObjects: objects.objects.count, freed: freed)
    }
}
