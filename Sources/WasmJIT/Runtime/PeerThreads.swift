import CWasmRuntime
import Foundation
import WasmCoredumpFormat
import WasmUnwind

/// What a coredump holds besides its threads: the modules, instances,
/// memories and globals of the stores its frames belong to, each once.
struct CoredumpParts {
    var moduleIndex: [ObjectIdentifier: UInt32] = [:]
    var moduleNames: [String] = []
    var moduleObjects: [Module] = []
    var memoryIndex: [ObjectIdentifier: UInt32] = [:]
    /// Per memory: the live one (the trapping store's, streamed when the
    /// coredump is written), or nil when `images` holds a copy.
    var memories: [Memory?] = []
    var images: [WasmCoredump.MemoryImage] = []
    var globalIndex: [ObjectIdentifier: UInt32] = [:]
    var globals: [WasmCoredump.Global] = []
    var instances: [WasmCoredump.Instance] = []
    /// By the address of the instance's context.
    var instanceIndex: [UInt: UInt32] = [:]

    /// Adds `store`'s instances (those not added yet), never retaining one.
    /// Another thread's store: its memories are copied now
    /// (`copyingMemories`).
    mutating func add(_ store: Store, copyingMemories: Bool) {
        store.forEachInstance { context, instance in add(instance, context: context, of: store, copyingMemories: copyingMemories) }
    }

    private mutating func add(_ instance: Instance, context: UInt, of store: Store, copyingMemories: Bool) {
        if instanceIndex[context] == nil {
            let module = instance.module
            if moduleIndex[ObjectIdentifier(module)] == nil {
                moduleIndex[ObjectIdentifier(module)] = UInt32(moduleNames.count)
                moduleNames.append(store.coredumpModuleName(module) ?? "<anonymous-module-\(moduleNames.count)>")
                moduleObjects.append(module)
            }
            var memoryIndices: [UInt32] = []
            if let memory = instance.memory {
                if memoryIndex[ObjectIdentifier(memory)] == nil {
                    memoryIndex[ObjectIdentifier(memory)] = UInt32(memories.count)
                    var image = WasmCoredump.MemoryImage(pages: memory.pages, maximumPages: memory.maximumPages, segments: [])
                    if copyingMemories {
                        image.segments = CapturedCoredump.nonZeroChunks(memory).map { chunk in
                            (UInt64(chunk.start), memory.withBytes { Array($0[chunk.start..<chunk.end]) })
                        }
                    }
                    memories.append(copyingMemories ? nil : memory)
                    images.append(image)
                }
                memoryIndices.append(memoryIndex[ObjectIdentifier(memory)]!)
            }
            var globalIndices: [UInt32] = []
            for global in instance.globals {
                if globalIndex[ObjectIdentifier(global)] == nil {
                    globalIndex[ObjectIdentifier(global)] = UInt32(globals.count)
                    globals.append(WasmCoredump.Global(type: global.kind.coredumpType, bits: global.kind.isReference ? 0 : global.cell.pointee))
                }
                globalIndices.append(globalIndex[ObjectIdentifier(global)]!)
            }
            instanceIndex[context] = UInt32(instances.count)
            instances.append(WasmCoredump.Instance(module: moduleIndex[ObjectIdentifier(module)]!, memories: memoryIndices,
                                                   globals: globalIndices))
        }
    }
}

/// The other threads running wasm, for a coredump at a trap
/// (docs/post-mortem.md#several-threads): each is signalled and copies its
/// own registers, activations and stack, as a trap's snapshot; one stopped
/// in wasm code waits, stopped, until the coredump has read what it needs
/// (it holds no lock there), one in a host call goes on (its wasm frames,
/// below its exit record, were copied). Their stores are read under their
/// `peerLock`, their memories copied.
enum PeerThreads {
    /// How long a thread has to answer.
    static let timeout: UInt64 = 200_000_000
    /// Per thread: stack bytes and activations copied at most.
    static let stackCapacity = 4 << 20
    static let activationCapacity = 4096

    /// Each other thread in wasm, as a coredump thread, its stores'
    /// instances added to `parts`.
    static func take(into parts: inout CoredumpParts, except trapping: Store) -> [WasmCoredump.Thread] {
        var tids = [Int64](repeating: 0, count: 256)
        let count = Int(wu_peer_threads(&tids, Int32(tids.count)))
        guard count > 0 else { return [] }
        var threads: [WasmCoredump.Thread] = []
        // SAFETY: the buffers each thread's handler copies into, one request
        // at a time (`wu_peer_snapshot` returns once the handler is done
        // with them, or has never taken them); freed after the last.
        let stack = UnsafeMutablePointer<UInt8>.allocate(capacity: stackCapacity)
        let activations = UnsafeMutablePointer<wu_snapshot_activation>.allocate(capacity: activationCapacity)
        defer {
            stack.deallocate()
            activations.deallocate()
        }
        // Every stopped thread goes on once its frames and store are read.
        wu_peers_begin()
        defer { wu_peers_release() }
        for tid in tids.prefix(min(count, tids.count)) {
            var peer = wu_peer()
            peer.tid = tid
            peer.snapshot.stack = stack
            peer.snapshot.stack_capacity = UInt64(stackCapacity)
            peer.snapshot.activations = activations
            peer.snapshot.activation_capacity = UInt64(activationCapacity)
            wu_peer_snapshot(&peer, timeout)
            guard peer.where == Int32(WU_PEER_IN_WASM) || peer.where == Int32(WU_PEER_IN_HOST_CALL), peer.snapshot.valid != 0,
                  let context = peer.store, let store = LiveStores.shared.store(trapInfo: UInt(bitPattern: context)) else { continue }
            let snapshot = TrapSnapshot(peer.snapshot)
            let inWasm = peer.where == Int32(WU_PEER_IN_WASM)
            let bounds = snapshot.activations.enumerated().map { index, row in
                ActivationBounds(start: index == 0 && inWasm ? .programCounter(row.pc) : .returnAddress(row.pc),
                                 startFramePointer: row.fp, entryFramePointer: row.entryFP)
            }
            let reader = CapturedMemoryReader(baseAddress: snapshot.stackBase, bytes: snapshot.stack)
            let backtrace = Backtrace(walking: FramePointerWalker(architecture: NativeArchitecture.self, reader: reader,
                                                                  activations: bounds.makeIterator(), limits: .default))
            // The store is another thread's: read while it cannot change
            // its modules and instances.
            let frames = store.peerLock.withLock { () -> [WasmCoredump.Frame] in
                if store !== trapping { parts.add(store, copyingMemories: true) }
                let symbolicated = store.registry.symbolicate(backtrace)
                return CoredumpCapture(store: store).frames(of: symbolicated, stack: .snapshot(snapshot),
                                                            newest: inWasm ? .interrupted : .trap) {
                    parts.instanceIndex[$0]
                }
            }
            threads.append(WasmCoredump.Thread(name: "\(tid)", frames: frames))
        }
        return threads
    }
}
