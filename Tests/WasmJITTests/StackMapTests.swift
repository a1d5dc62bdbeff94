import Testing
import WasmJIT

/// A host object whose deinit is counted, so tests see what the collector
/// frees.
final class Tracked: @unchecked Sendable {
    let id: Int32
    let counter: DeinitCounter
    init(_ id: Int32, _ counter: DeinitCounter) {
        self.id = id
        self.counter = counter
    }
    deinit { counter.freed.append(id) }
}

final class DeinitCounter: @unchecked Sendable {
    var freed: [Int32] = []
}

/// A store whose `host` module creates tracked objects and collects.
final class GCHarness {
    let engine: Engine
    let store: Store
    var imports = Imports()
    let counter = DeinitCounter()
    var reports: [CollectionReport] = []
    var created: [Int32: ExternRef] = [:]

    init(_ exitRecording: ExitRecording = .trampoline) {
        engine = Engine(configuration: Engine.Configuration(exitRecording: exitRecording))
        store = Store(engine: engine)
        imports.define(module: "host", name: "new_object", .host(HostFunction(
            signature: Signature(parameters: [.i32], results: [.externref])) { [unowned self] caller, arguments in
            guard case .i32(let id) = arguments[0] else { return [] }
            let reference = caller.store.externref(for: Tracked(id, self.counter))
            self.created[id] = reference
            return [.externref(reference)]
        }))
        imports.define(module: "host", name: "gc", .host(HostFunction(signature: Signature(parameters: [], results: [])) { [unowned self] caller, _ in
            self.reports.append(try caller.store.collectGarbage())
            return []
        }))
    }

    func instantiate(_ text: String) throws -> Instance {
        try Instance(store: store, module: Module(engine: engine, text: text), imports: imports)
    }

    /// Which object each root of the last collection refers to, per frame.
    func rootObjects(_ report: CollectionReport) -> [[Int32]] {
        var perFrame: [[Int32]] = []
        for root in report.stackRoots {
            while perFrame.count <= root.frameIndex { perFrame.append([]) }
            let object = store.object(for: ExternRef(handle: UInt64(root.value))) as? Tracked
            perFrame[root.frameIndex].append(object?.id ?? -1)
        }
        return perFrame
    }
}

@Suite("Stack maps and GC roots on real stacks")
struct StackMapTests {
    static let refs = """
        (module $refs
          (import "host" "new_object" (func $new (param i32) (result externref)))
          (import "host" "gc" (func $gc))
          (func $leaf (param $r externref)
            call $gc)
          (func $middle (export "middle") (param $p externref) (local $l externref) (local $n externref) (local $i i64)
            i32.const 2
            call $new
            local.set $l
            local.get $l
            local.get $p
            call $leaf
            ref.is_null
            drop)
          (func $plain (export "plain") (param i32) (result i32)
            call $gc
            local.get 0))
        """
    // wasm-objdump -d: leaf calls gc at 0x5a; middle calls new at 0x65 and leaf at 0x6d.
    // Frame of middle: p at fp-16, l at fp-24, n at fp-32, i at fp-40,
    // operand slot 0 at fp-48.

    @Test("refs in params, locals and operand-stack values live across a call are roots; null refs are not", arguments: exitRecordingModes)
    func paramsLocalsOperands(mode: ExitRecording) throws {
        let harness = GCHarness(mode)
        let instance = try harness.instantiate(Self.refs)
        let argument = harness.store.externref(for: Tracked(1, harness.counter))
        _ = try instance.export("middle")!.call([.externref(argument)])
        let report = try #require(harness.reports.first)
        // Frame 0 (leaf, at its call to gc): its parameter, object 1.
        // Frame 1 (middle, at its call to leaf): p (1), l (2), and the operand
        // slot holding l again (2); n is null and is no root.
        #expect(harness.rootObjects(report) == [[1], [1, 2, 2]])
        let middleFP = report.stackRoots[1].frame.framePointer
        #expect(report.stackRoots[1...].map { Int(bitPattern: $0.slotAddress) - Int(bitPattern: middleFP) } == [-16, -24, -48])
        #expect(report.stackRoots.allSatisfy { $0.slotAddress % 8 == 0 })
    }

    @Test("a frame with no references has an empty stack map, not a missing one", arguments: exitRecordingModes)
    func noReferences(mode: ExitRecording) throws {
        let harness = GCHarness(mode)
        let instance = try harness.instantiate(Self.refs)
        #expect(try instance.export("plain")!.call([.i32(5)]) == [.i32(5)])
        let report = try #require(harness.reports.first)
        #expect(report.stackRoots.isEmpty)
        let module = try #require(harness.store.modules.first)
        // Every call site has an entry: new (0x65), leaf (0x6d), gc twice;
        // with inline exit recording each import call has three call
        // instructions (wasm, host and native paths), each with its entry.
        #expect(module.stackMaps.count == (mode == .trampoline ? 4 : 10))
        let plain = try #require(module.compiledFunction(4))
        let returnOffset = UInt32(plain.callSites[0].returnAddressOffset)
        #expect(module.stackMaps.map(atReturnOffset: returnOffset)?.isEmpty == true)
    }

    @Test("objects held only by wasm frames survive a collection; once the frames return the next collection frees them", arguments: exitRecordingModes)
    func collectorFreesExactly(mode: ExitRecording) throws {
        let harness = GCHarness(mode)
        let instance = try harness.instantiate(Self.refs)
        let argument = harness.store.externref(for: Tracked(1, harness.counter))
        let garbage = harness.store.externref(for: Tracked(99, harness.counter))
        _ = garbage
        _ = try instance.export("middle")!.call([.externref(argument)])
        // At the collection inside leaf: 1 and 2 were in frames, 99 nowhere.
        #expect(harness.counter.freed == [99])
        #expect(harness.reports[0].freed.count == 1)
        // Now no frame holds 1 or 2: a collection outside wasm frees both.
        let after = try harness.store.collectGarbage()
        #expect(Set(harness.counter.freed) == [99, 1, 2])
        #expect(after.liveObjects == 0)
    }

    @Test("pinned handles survive; unpinned they are collected")
    func pinning() throws {
        let harness = GCHarness()
        let kept = harness.store.externref(for: Tracked(7, harness.counter))
        harness.store.pin(kept)
        _ = try harness.store.collectGarbage()
        #expect(harness.counter.freed.isEmpty)
        harness.store.unpin(kept)
        _ = try harness.store.collectGarbage()
        #expect(harness.counter.freed == [7])
    }

    @Test("a collection many frames deep and across nested activations keeps every frame's objects", arguments: exitRecordingModes)
    func deepAndNested(mode: ExitRecording) throws {
        let harness = GCHarness(mode)
        harness.imports.fallback = { module, name, signature in
            guard module == "host", name == "call:down" else { return nil }
            return .host(HostFunction(signature: signature) { caller, arguments in
                try caller.export("down")!.call(arguments)
            })
        }
        // down(n, depth): holds a new object per frame; every 10th frame
        // re-enters through the host (a new activation); at the bottom, gc.
        let instance = try harness.instantiate("""
            (module $deep
              (import "host" "new_object" (func $new (param i32) (result externref)))
              (import "host" "gc" (func $gc))
              (import "host" "call:down" (func $reenter (param i32 i32)))
              (func $down (export "down") (param $n i32) (param $depth i32) (local $mine externref)
                local.get $n
                call $new
                local.set $mine
                local.get $n
                i32.eqz
                if
                  call $gc
                  return
                end
                local.get $n
                i32.const 10
                i32.rem_u
                i32.eqz
                if
                  local.get $n
                  i32.const 1
                  i32.sub
                  local.get $depth
                  call $reenter
                else
                  local.get $n
                  i32.const 1
                  i32.sub
                  local.get $depth
                  call $down
                end))
            """)
        _ = try instance.export("down")!.call([.i32(50), .i32(0)])
        let report = try #require(harness.reports.first)
        // 51 frames, each holding its own object n at its call site; the
        // newest (n = 0) holds object 0 at the gc call.
        #expect(harness.rootObjects(report) == (0...50).map { [Int32($0)] })
        #expect(Set(report.stackRoots.map(\.frame.activation)).count == 6)
        #expect(harness.counter.freed.isEmpty)
        _ = try harness.store.collectGarbage()
        #expect(Set(harness.counter.freed) == Set(0...50))
    }

    @Test("a return address that is no call site is an error naming the pc, never a nearest match")
    func missingStackMap() throws {
        let harness = GCHarness()
        let instance = try harness.instantiate(Self.refs)
        let module = instance.module
        let site = try #require(module.compiledFunction(3)?.callSites.last)
        let returnAddress = module.code.baseAddress + UInt(site.returnAddressOffset)
        #expect(harness.store.registry.stackMap(forReturnAddress: returnAddress) != nil)
        #expect(harness.store.registry.stackMap(forReturnAddress: returnAddress + 1) == nil)
        #expect(harness.store.registry.stackMap(forReturnAddress: returnAddress - 1) == nil)
        let frames = [Frame(address: .returnAddress(returnAddress + 1), framePointer: 0x1000, activation: 0)]
        #expect(throws: RootEnumerationError.missingStackMap(pc: returnAddress + 1, frameIndex: 0)) {
            try harness.store.registry.roots(of: frames, reader: UncheckedMemoryReader())
        }
        #expect(RootEnumerationError.missingStackMap(pc: 0x7F00_1234, frameIndex: 2).description
                == "frame 2: no stack map for return address 0x7f001234 (not a recorded call site)")
    }
}

@Suite("References held outside the stack")
struct HeldReferenceTests {
    @Test("externrefs in a table and a global survive collections; dropped ones are freed", arguments: exitRecordingModes)
    func tablesAndGlobals(mode: ExitRecording) throws {
        let harness = GCHarness(mode)
        let instance = try harness.instantiate("""
            (module
              (import "host" "new_object" (func $new (param i32) (result externref)))
              (import "host" "gc" (func $gc))
              (table $t 2 externref)
              (global $g (mut externref) (ref.null extern))
              (func (export "keep")
                (table.set $t (i32.const 1) (call $new (i32.const 1)))
                (global.set $g (call $new (i32.const 2)))
                (drop (call $new (i32.const 3)))
                (call $gc))
              (func (export "drop_them")
                (table.set $t (i32.const 1) (ref.null extern))
                (global.set $g (ref.null extern))
                (call $gc))
              (func (export "table_id") (result i32) (ref.is_null (table.get $t (i32.const 1))))
            )
            """)
        _ = try instance.export("keep")!.call([])
        // Object 3 was never stored: freed. 1 and 2 are held by the instance.
        #expect(harness.counter.freed == [3])
        #expect(harness.reports.last?.instanceRoots.count == 2)
        #expect(try instance.export("table_id")!.call([]) == [.i32(0)])
        _ = try instance.export("drop_them")!.call([])
        #expect(harness.counter.freed.sorted() == [1, 2, 3])
    }
}
