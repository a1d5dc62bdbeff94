import CWasmUnwindABI
import CWasmRuntime

/// A table of references: function references (each a pointer to a
/// `wu_func_ref`) or host-object handles, 0 for null. Owns a `wu_table`
/// record at a stable address that compiled code reads (`call_indirect`,
/// `table.get`); its element storage moves when the table grows.
public final class Table {
    /// `.funcref` or `.externref`.
    public let kind: ValueKind
    public let maximum: UInt64?
    // SAFETY: allocated in init, freed in deinit; `elements` is replaced
    // only by `grow`, between wasm instructions of the store's thread,
    // which copies before freeing the old array. Generated code reads the
    // record while an instance that holds the table runs.
    let record: UnsafeMutablePointer<wu_table>
    private var capacity: Int
    /// Instances that imported the table: their function references may be
    /// in it, so they live as long as it does.
    private var users: [AnyObject] = []
    /// The store the table belongs to.
    let binding = StoreBinding()
    /// The instance that defined the table (nil for one the host made):
    /// its function references fill the table, so an instance importing
    /// the table keeps it alive. (Weak: the definer holds the table.)
    weak var definer: Instance?

    func keepAlive(_ user: AnyObject) {
        if !users.contains(where: { $0 === user }) { users.append(user) }
    }

    /// Nulls every element that refers to a function of the instance whose
    /// context is `context`, which is going away.
    func removeReferences(toContext context: UnsafeMutablePointer<wu_vmctx>) {
        guard kind == .funcref else { return }
        for index in 0..<Int(size) {
            let element = record.pointee.elements[index]
            // SAFETY: a funcref element is null or a reference its instance
            // (still alive: it is the one going) keeps.
            if let reference = UnsafePointer<wu_func_ref>(bitPattern: UInt(element)), reference.pointee.vmctx == context {
                record.pointee.elements[index] = 0
            }
        }
    }

    /// A table of `minimum` elements, each `initial` (0: null).
    public init(kind: ValueKind, minimum: UInt64, maximum: UInt64? = nil, initial: UInt64 = 0) throws {
        precondition(kind.isReference, "a table holds references")
        guard minimum <= UInt64(Self.limit) else { throw InstantiationError.tableTooLarge(elements: minimum) }
        self.kind = kind
        self.maximum = maximum
        record = .allocate(capacity: 1)
        capacity = max(1, Int(minimum))
        let elements = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        elements.initialize(repeating: initial, count: capacity)
        record.initialize(to: wu_table(elements: elements, size: minimum))
    }

    deinit {
        record.pointee.elements.deallocate()
        record.deallocate()
    }

    /// The most elements any table may have here (a runtime limit, as in
    /// Wasmtime: 10 million).
    static let limit = 10_000_000

    /// The number of elements.
    public var size: UInt64 { record.pointee.size }

    /// Element `index`'s bits (a `wu_func_ref` address or a handle; 0 for
    /// null), or nil past the end.
    public subscript(index: UInt64) -> UInt64? {
        guard index < size else { return nil }
        return record.pointee.elements[Int(index)]
    }

    func set(_ index: UInt64, _ value: UInt64) -> Bool {
        guard index < size else { return false }
        record.pointee.elements[Int(index)] = value
        return true
    }

    /// Grows by `delta` elements set to `value`; returns the old size, or
    /// nil if the maximum (or the runtime limit) would be passed.
    @discardableResult
    public func grow(by delta: UInt64, value: UInt64 = 0) -> UInt64? {
        let old = size
        let (new, overflow) = old.addingReportingOverflow(delta)
        guard !overflow, new <= (maximum ?? UInt64.max), new <= UInt64(Self.limit) else { return nil }
        if Int(new) > capacity {
            let grown = max(Int(new), capacity * 2)
            let elements = UnsafeMutablePointer<UInt64>.allocate(capacity: grown)
            elements.moveInitialize(from: record.pointee.elements, count: Int(old))
            record.pointee.elements.deallocate()
            record.pointee.elements = elements
            capacity = grown
        }
        (record.pointee.elements + Int(old)).initialize(repeating: value, count: Int(delta))
        record.pointee.size = new
        return old
    }

    /// Elements `range` of the table, as bits (for the collector).
    var elements: UnsafeBufferPointer<UInt64> {
        UnsafeBufferPointer(start: record.pointee.elements, count: Int(size))
    }
}

/// A global variable: its type and a 64-bit cell at a stable address that
/// compiled code reads and writes (`global.get`, `global.set`). An instance
/// that imports the global uses the exporter's cell.
public final class Global {
    public let kind: ValueKind
    public let isMutable: Bool
    // SAFETY: allocated in init, freed in deinit; instances that import the
    // global hold it, so generated code never reads a freed cell.
    let cell: UnsafeMutablePointer<UInt64>
    /// Instances that imported the global (a mutable funcref global may
    /// hold their function references).
    private var users: [AnyObject] = []
    /// The store the global belongs to.
    let binding = StoreBinding()
    /// The instance that defined the global (nil for one the host made).
    weak var definer: Instance?

    func keepAlive(_ user: AnyObject) {
        if !users.contains(where: { $0 === user }) { users.append(user) }
    }

    public init(kind: ValueKind, mutable: Bool, value: Value) {
        precondition(value.kind == kind, "a \(kind) global initialised with \(value)")
        self.kind = kind
        self.isMutable = mutable
        cell = .allocate(capacity: 1)
        cell.initialize(to: value.slot)
    }

    init(kind: ValueKind, mutable: Bool, bits: UInt64) {
        self.kind = kind
        self.isMutable = mutable
        cell = .allocate(capacity: 1)
        cell.initialize(to: bits)
    }

    deinit { cell.deallocate() }

    /// The global's value.
    public var value: Value {
        get { Value(slot: cell.pointee, kind: kind) }
        set {
            precondition(newValue.kind == kind, "a \(kind) global set to \(newValue)")
            cell.pointee = newValue.slot
        }
    }
}

/// A non-null function reference (`funcref`): the address of a
/// `wu_func_ref`, which names the code, the instance context to call it
/// with and its signature. Valid while the instance that made it lives.
public struct FuncRef: Hashable, Sendable {
    public let address: UInt

    init(address: UInt) {
        precondition(address != 0, "0 is the null reference")
        self.address = address
    }
}
