import Testing
import WasmJIT

/// Tables, memories, globals and tags belong to one store, and what a
/// table or global refers to lives as long as it can be reached.
@Suite("Store ownership of tables, memories, globals and tags")
struct StoreOwnershipTests {
    static let exporter = """
        (module $exporter
          (table (export "table") 2 funcref)
          (memory (export "memory") 1)
          (global (export "global") (mut funcref) (ref.func $seven))
          (tag (export "tag") (param i32))
          (elem (i32.const 0) $seven $eight)
          (func $seven (result i32) i32.const 7)
          (func $eight (result i32) i32.const 8))
        """

    static let importer = """
        (module $importer
          (import "e" "table" (table 2 funcref))
          (type $get (func (result i32)))
          (func (export "call") (param i32) (result i32) local.get 0 call_indirect (type $get)))
        """

    @Test("a table, memory, global or tag of one store is refused by an instance of another, by name",
          arguments: ["table", "memory", "global", "tag"])
    func crossStore(kind: String) throws {
        let engine = Engine()
        let first = Store(engine: engine), second = Store(engine: engine)
        let exporter = try Instance(store: first, module: Module(engine: engine, text: Self.exporter))
        let imports: [String: String] = [
            "table": #"(import "e" "x" (table 2 funcref))"#, "memory": #"(import "e" "x" (memory 1))"#,
            "global": #"(import "e" "x" (global (mut funcref)))"#, "tag": #"(import "e" "x" (tag (param i32)))"#,
        ]
        var definitions = Imports()
        definitions.define(module: "e", name: "x", try #require(exporter.exportedDefinition(kind)))
        let module = try Module(engine: engine, text: "(module \(imports[kind]!))")
        #expect(throws: InstantiationError.crossStoreImport(module: "e", name: "x")) {
            try Instance(store: second, module: module, imports: definitions)
        }
        // The same store imports it.
        _ = try Instance(store: first, module: module, imports: definitions)
    }

    @Test("a table the host makes belongs to the store that first uses it")
    func hostTable() throws {
        let engine = Engine()
        let table = try Table(kind: .funcref, minimum: 2)
        var imports = Imports()
        imports.define(module: "e", name: "table", .table(table))
        let module = try Module(engine: engine, text: Self.importer)
        let first = Store(engine: engine)
        _ = try Instance(store: first, module: module, imports: imports)
        #expect(throws: InstantiationError.crossStoreImport(module: "e", name: "table")) {
            try Instance(store: Store(engine: engine), module: module, imports: imports)
        }
    }

    @Test("the instance that defined and filled a table lives while an importer calls through it")
    func definerKeptAlive() throws {
        let engine = Engine()
        let store = Store(engine: engine)
        weak var weakExporter: Instance?
        let importer: Instance
        do {
            let exporter = try Instance(store: store, module: Module(engine: engine, text: Self.exporter))
            weakExporter = exporter
            var imports = Imports()
            imports.define(module: "e", name: "table", try #require(exporter.exportedDefinition("table")))
            importer = try Instance(store: store, module: Module(engine: engine, text: Self.importer), imports: imports)
        }
        #expect(weakExporter != nil, "the exporter was freed while its functions are in a table another instance calls through")
        #expect(try importer.export("call")!.call([.i32(0)]) == [.i32(7)])
        #expect(try importer.export("call")!.call([.i32(1)]) == [.i32(8)])
    }

    @Test("a table that outlives its defining instance with no importer holds no reference to its freed functions")
    func escapedTable() throws {
        let engine = Engine()
        let store = Store(engine: engine)
        var table: Table?
        weak var weakExporter: Instance?
        do {
            let exporter = try Instance(store: store, module: Module(engine: engine, text: Self.exporter))
            weakExporter = exporter
            guard case .table(let exported)? = exporter.exportedDefinition("table") else { Issue.record("no table"); return }
            table = exported
            #expect(exported[0] != 0)
        }
        #expect(weakExporter == nil)
        // The exporter's references are gone with it: the elements are null,
        // and a call through them traps instead of running freed code.
        #expect(table?[0] == 0 && table?[1] == 0)
        var imports = Imports()
        imports.define(module: "e", name: "table", .table(table!))
        let importer = try Instance(store: store, module: Module(engine: engine, text: Self.importer), imports: imports)
        let trap = try #require(throws: Trap.self) { try importer.export("call")!.call([.i32(0)]) }
        #expect(trap.message == "wasm trap: uninitialized element", "\(trap)")
    }
}
