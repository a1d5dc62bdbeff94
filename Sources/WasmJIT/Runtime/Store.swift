import CWasmUnwindABI
import Foundation
import WasmUnwind
import CWasmRuntime

/// Owns a runtime-limits record and the code registry of the modules
/// instantiated in it (and keeps those modules' code alive). A store is used by one thread at a time; each
/// thread that runs wasm uses its own store.
public final class Store {
    public let engine: Engine
    /// The record the trampolines of this store's code write.
    public let limits = RuntimeLimits()
    /// The code of every module instantiated in this store.
    /// (Read on every throw, GC and backtrace; written only while a module
    /// is registered, between wasm instructions of the one thread using the
    /// store: no exclusivity check.)
    // SAFETY: one thread uses a store at a time, and registration never
    // overlaps a read (it happens between wasm instructions).
    @exclusivity(unchecked) public private(set) var registry = CodeRegistry()

    private var registeredModules: [ObjectIdentifier: Module] = [:]
    /// What the signal handler knows of this store (the activations'
    /// embedder context): its limits record and its modules' code regions.
    // SAFETY: `trapInfo`, `regions`, `memoryBases` and `resumeRecord` are
    // allocated in init and freed in deinit; the tables are replaced only
    // by `register` and `noteMemory`, which publish the new table before
    // freeing the old (see there), so a handler on this thread never reads
    // freed memory.
    let trapInfo: UnsafeMutablePointer<wu_store_trap_info>
    private var regions: UnsafeMutableBufferPointer<wu_code_region>
    /// The same regions, sorted by start, kept to insert into.
    private var sortedRegions: [wu_code_region] = []
    /// The bases of the memories of this store's instances (with how many
    /// instances use each), published to the trap handler sorted.
    private var memoryUses: [UInt: Int] = [:]
    private var memoryBases: UnsafeMutableBufferPointer<UInt64>
    /// The failure a host function reported, on its way out to `Func.call`.
    var pendingFailure: Trap?
    /// A wasm exception a host function threw, on its way into the calling
    /// wasm (`unwindPendingException`).
    var exceptionInFlight: WasmException?
    /// Called at every throw into this store's wasm — `throw`, `throw_ref`,
    /// and an exception a host function throws — after the handler search
    /// and before the exception resumes or leaves (for captures and
    /// tracing). It must not call into wasm. (A collection there is safe:
    /// the payload is live in the throwing call site's stack map.)
    // SAFETY: set by the host between calls, read at throws of the one
    // thread using the store.
    @exclusivity(unchecked) public var onThrow: ((ThrowSite) -> Void)?
    /// Where the last caught exception resumes (`wu_resume`), filled by the
    /// unwinder and read by the generated code right after.
    let resumeRecord: UnsafeMutablePointer<wu_resume>
    /// The host objects wasm refers to by handle.
    let objects = HostObjects()
    /// The arguments' array of host functions on `[Value]`, kept between
    /// calls (a store is used by one thread at a time).
    var argumentArray: [Value]?
    /// The instances alive in this store by their context's address: for
    /// describing traps from the registers a trap leaves, and for the
    /// collector (their tables and globals hold references). Unretained:
    /// an instance removes itself when it goes.
    // SAFETY: an instance registers itself in init and unregisters in
    // deinit, so every entry is alive when read.
    private var instances: [UInt: Unmanaged<Instance>] = [:]
    /// Their contexts' addresses in the order they were made.
    private var instanceOrder: [UInt] = []

    /// The fuel and epoch deadline compiled checks read (`wu_store_context`).
    // SAFETY: allocated in init and freed in deinit; instances, whose
    // contexts point here, keep the store alive.
    let interruptionContext: UnsafeMutablePointer<wu_store_context>

    /// Held while this store's modules and instances change, and while
    /// another thread's coredump reads them (`PeerThreads`): a store is
    /// used by one thread, but a trap on another thread may read it.
    let peerLock = NSLock()

    public init(engine: Engine) {
        self.engine = engine
        TrapHandling.installHandler()
        ExceptionEntries.installed
        interruptionContext = .allocate(capacity: 1)
        // No fuel (as Wasmtime: `setFuel` gives some), no deadline (unlike
        // Wasmtime, whose 0 stops at the first check).
        interruptionContext.initialize(to: wu_store_context(fuel_consumed: 0, epoch_deadline: .max))
        resumeRecord = .allocate(capacity: 1)
        resumeRecord.initialize(to: wu_resume())
        regions = .allocate(capacity: 1)
        memoryBases = .allocate(capacity: 1)
        trapInfo = .allocate(capacity: 1)
        trapInfo.initialize(to: wu_store_trap_info(
            limits: UnsafeMutablePointer(bitPattern: limits.address), regions: UnsafePointer(regions.baseAddress),
            region_count: 0, memory_bases: UnsafePointer(memoryBases.baseAddress), memory_count: 0))
        LiveStores.shared.add(self, trapInfo: UInt(bitPattern: trapInfo))
    }

    deinit {
        LiveStores.shared.remove(trapInfo: UInt(bitPattern: trapInfo))
        interruptionContext.deallocate()
        resumeRecord.deallocate()
        trapInfo.deallocate()
        regions.deallocate()
        memoryBases.deallocate()
    }

    /// Fuel needs an engine that counts it.
    public struct FuelNotConfigured: Error, CustomStringConvertible {
        public var description: String { "fuel is not configured in this store's engine (Engine.Configuration.consumesFuel)" }
    }

    /// Gives the store `fuel` units to spend from now on (Wasmtime's
    /// `Store::set_fuel`): its wasm traps with `.outOfFuel` at the first
    /// function entry or loop header after spending it. A store starts
    /// with none.
    public func setFuel(_ fuel: UInt64) throws(FuelNotConfigured) {
        guard engine.configuration.consumesFuel else { throw FuelNotConfigured() }
        interruptionContext.pointee.fuel_consumed = -Int64(clamping: fuel)
    }

    /// The fuel left (Wasmtime's `Store::get_fuel`): what `setFuel` gave
    /// minus what the code spent up to its last flush — the end of a
    /// straight-line run (a branch, a block's end, a call).
    public func fuel() throws(FuelNotConfigured) -> UInt64 {
        guard engine.configuration.consumesFuel else { throw FuelNotConfigured() }
        let consumed = interruptionContext.pointee.fuel_consumed
        return consumed >= 0 ? 0 : UInt64(-consumed)
    }

    /// The store's wasm traps with `.interrupt` at its first function entry
    /// or loop header once the engine's epoch has advanced `ticks` past
    /// where it is now (Wasmtime's `Store::set_epoch_deadline`). Without a
    /// deadline a store is never stopped by the epoch.
    public func setEpochDeadline(_ ticks: UInt64) {
        let (deadline, overflow) = engine.currentEpoch.addingReportingOverflow(ticks)
        interruptionContext.pointee.epoch_deadline = overflow ? .max : deadline
        // SAFETY: an address in `instances` is a live instance's context.
        for address in instances.keys {
            UnsafeMutablePointer<wu_vmctx>(bitPattern: address)?.pointee.epoch_deadline = overflow ? .max : deadline
        }
    }

    /// Whether each trap of this store, and each wasm exception no frame
    /// catches, carries a coredump (`Trap.coredump`, Wasmtime's
    /// `coredump_on_trap`): every frame's locals and operand stack, the
    /// instances, globals and memories. Turning it on turns on trap
    /// snapshots (`enableTrapSnapshots`) for the calling thread, where the
    /// frames' values are read.
    public var coredumpOnTrap = false {
        didSet { if coredumpOnTrap { enableTrapSnapshots() } }
    }
    /// Whether a coredump at a trap of this store also holds every other
    /// thread running wasm — any store's — with its frames' values
    /// (`PeerThreads`; docs/post-mortem.md#several-threads). On by default.
    public var coredumpIncludesOtherThreads = true
    /// The `core` section's name in this store's coredumps (Wasmtime's CLI
    /// writes the module's path).
    public var coredumpProcessName = CommandLine.arguments.first ?? "wasm"
    /// How a module is named in this store's coredumps (`coremodules`);
    /// nil: its name section's name, else `<anonymous-module-N>`.
    public var coredumpModuleName: (Module) -> String? = { $0.name }

    /// A coredump of this store at `backtrace`'s frames, read on the
    /// stack as `stack` says.
    func coredump(_ backtrace: SymbolicatedBacktrace, stack: CoredumpCapture.Stack) -> CapturedCoredump {
        CoredumpCapture(store: self).take(backtrace, stack: stack, processName: coredumpProcessName)
    }

    /// The wasm backtrace of this store's activations on the calling thread,
    /// symbolicated (from a host function: the wasm frames that led to it).
    public func backtrace(trap: TrapRegisters? = nil, walkLimits: WalkLimits = .default) -> SymbolicatedBacktrace {
        registry.symbolicate(Backtrace.capture(limits, trap: trap, walkLimits: walkLimits))
    }

    /// Makes every wasm trap on the calling thread keep a copy of the trapped
    /// stack (`Trap.snapshot`) — registers, activations and up to
    /// `stackCapacity` bytes — so it can be written as a capture. The copy is
    /// made in the signal handler, into buffers allocated here.
    public func enableTrapSnapshots(stackCapacity: Int = 4 << 20, activationCapacity: Int = 4096) {
        TrapHandling.enableSnapshots(stackCapacity: stackCapacity, activationCapacity: activationCapacity)
    }

    /// The instances alive in this store.
    public var liveInstances: [Instance] { instances.values.map { $0.takeUnretainedValue() } }

    /// The modules instantiated in this store.
    public var modules: [Module] { Array(registeredModules.values) }

    /// How many of this store's activations are on the calling thread.
    public var activationDepth: Int { Activation.depth(of: limits) }

    func register(_ instance: Instance, context: UnsafeMutablePointer<wu_vmctx>) {
        peerLock.withLock {
            instances[UInt(bitPattern: context)] = Unmanaged.passUnretained(instance)
            instanceOrder.append(UInt(bitPattern: context))
        }
    }
    func unregister(context: UnsafeMutablePointer<wu_vmctx>) {
        peerLock.withLock {
            instances[UInt(bitPattern: context)] = nil
            instanceOrder.removeAll { $0 == UInt(bitPattern: context) }
        }
    }

    /// The instances alive in this store, oldest first.
    public var instancesInOrder: [Instance] {
        instanceOrder.compactMap { instances[$0]?.takeUnretainedValue() }
    }

    /// The instance whose context is at `address`, if it is one of this store's.
    func instance(atContext address: UInt) -> Instance? { instances[address]?.takeUnretainedValue() }

    /// `body` of the instance whose context is at `address`, not retained:
    /// another thread's coredump reads it under `peerLock` and must never
    /// hold the last reference (the instance's deinit would take the lock).
    func withInstance<R>(atContext address: UInt, _ body: (Instance) -> R) -> R? {
        // SAFETY: an instance in `instances` is alive until its deinit
        // unregisters it, which takes `peerLock` (held by a reader on
        // another thread), so it outlives `body`.
        instances[address]?._withUnsafeGuaranteedRef(body)
    }

    /// `body` of each instance, oldest first, with its context's address,
    /// not retained (as `withInstance`).
    func forEachInstance(_ body: (UInt, Instance) -> Void) {
        for address in instanceOrder { instances[address]?._withUnsafeGuaranteedRef { body(address, $0) } }
    }

    /// The host objects the store's instances hold outside the stack.
    var referencesHeldByInstances: [UInt64] {
        instances.values.flatMap { $0.takeUnretainedValue().heldReferences }
    }

    /// The linear memory size of the instance whose context is at
    /// `address`, if it is an instance of this store.
    func memorySize(ofContext address: UInt) -> Int? {
        // SAFETY: an address in `instances` is a live instance's context.
        guard instances[address] != nil, let context = UnsafePointer<wu_vmctx>(bitPattern: address) else { return nil }
        return Int(context.pointee.memory_size)
    }

    func register(_ module: Module) throws(CodeRegistryError) {
        let key = ObjectIdentifier(module)
        guard registeredModules[key] == nil else { return }
        peerLock.lock()
        defer { peerLock.unlock() }
        try registry.register(module.codeModule)
        registeredModules[key] = module
        // Publish the new region table, then free the old one. Registration
        // happens between wasm instructions of this thread, never inside the
        // trap handler, and other threads never use this store. A sampling
        // profiler's signal may come at any instruction of this: it sees the
        // old table, or the new one with the old count (a prefix of the new
        // table, which only grows), never freed memory — the fences keep the
        // compiler from moving the stores past each other or the free.
        let region = module.codeRegion
        var low = 0, high = sortedRegions.count
        while low < high {
            let middle = (low + high) / 2
            if sortedRegions[middle].start < region.start { low = middle + 1 } else { high = middle }
        }
        sortedRegions.insert(region, at: low)
        let sorted = sortedRegions
        let old = regions
        regions = .allocate(capacity: sorted.count)
        _ = regions.initialize(from: sorted)
        wu_signal_fence()
        trapInfo.pointee.regions = UnsafePointer(regions.baseAddress)
        wu_signal_fence()
        trapInfo.pointee.region_count = UInt64(sorted.count)
        wu_signal_fence()
        old.deallocate()
    }

    /// An instance of this store uses the memory at `base` (counted: a
    /// memory may be shared by several), or stops using it.
    func noteMemory(base: UInt, inUse: Bool) {
        memoryUses[base, default: 0] += inUse ? 1 : -1
        if memoryUses[base] == 0 { memoryUses[base] = nil }
        // Published as the region table is: new table, then the pointer,
        // then the count, then the old one freed. A memory is removed only
        // when no instance uses it, so no trap of this thread is in it.
        let sorted = memoryUses.keys.sorted().map(UInt64.init)
        let old = memoryBases
        memoryBases = .allocate(capacity: max(1, sorted.count))
        _ = memoryBases.initialize(from: sorted)
        wu_signal_fence()
        trapInfo.pointee.memory_count = min(trapInfo.pointee.memory_count, UInt64(sorted.count))
        wu_signal_fence()
        trapInfo.pointee.memory_bases = UnsafePointer(memoryBases.baseAddress)
        wu_signal_fence()
        trapInfo.pointee.memory_count = UInt64(sorted.count)
        wu_signal_fence()
        old.deallocate()
    }

}

/// Every store alive, by the address of its trap info (what activations
/// carry as their embedder context): how a coredump at a trap finds the
/// stores of other threads' frames.
final class LiveStores: @unchecked Sendable {
    static let shared = LiveStores()
    private final class Entry {
        weak var store: Store?
        init(_ store: Store) { self.store = store }
    }
    // SAFETY of @unchecked Sendable: `stores` is read and written only
    // with `lock` held.
    private let lock = NSLock()
    private var stores: [UInt: Entry] = [:]

    func add(_ store: Store, trapInfo: UInt) { lock.withLock { stores[trapInfo] = Entry(store) } }
    func remove(trapInfo: UInt) { lock.withLock { stores[trapInfo] = nil } }
    /// The store whose trap info is at `address`, if it is alive.
    func store(trapInfo address: UInt) -> Store? { lock.withLock { stores[address]?.store } }
}

/// Which store a table, memory, global or tag belongs to: the store of the
/// instance that defined it, or — for one the host made — of the first
/// instance that imported it. Its references, handles and code pointers
/// mean something only there, so an instance of another store is refused.
/// A binding never moves, even when its store is gone.
final class StoreBinding {
    private weak var store: Store?
    private var isBound = false

    /// Binds to `store` if unbound; whether the object belongs to `store`.
    func bind(_ store: Store) -> Bool {
        guard isBound else {
            self.store = store
            isBound = true
            return true
        }
        return self.store === store
    }
}
