/// One module's code as the registry sees it: what is registered. (The
/// registry lays it out flat for lookups: `CodeModuleRecord`.)
public struct CodeModule: Hashable, Sendable {
    /// The module's name (the name section's module name), if it has one.
    public var name: String?
    /// Absolute addresses of the module's code.
    public var codeRange: Range<UInt>
    /// The wasm functions compiled into that code, sorted by start offset.
    public var functions: [CodeFunction]
    /// The module's other code — trampolines and stubs — sorted by start
    /// offset, overlapping no function.
    public var stubs: [CodeStub]
    /// The stack maps of the module's call sites.
    public var stackMaps: StackMapTable

    public init(name: String?, codeRange: Range<UInt>, functions: [CodeFunction], stubs: [CodeStub] = [],
                stackMaps: StackMapTable = .empty) {
        self.name = name
        self.codeRange = codeRange
        self.functions = functions
        self.stubs = stubs
        self.stackMaps = stackMaps
    }

    func validate() throws(CodeRegistryError) {
        let size = UInt(codeRange.count)
        var previousEnd: UInt = 0
        for function in functions {
            guard function.codeRange.upperBound <= size else {
                throw .functionOutsideModule(functionIndex: function.index, range: function.codeRange, moduleSize: size)
            }
            guard function.codeRange.lowerBound >= previousEnd else {
                throw .overlappingFunctions(functionIndex: function.index, range: function.codeRange)
            }
            previousEnd = function.codeRange.upperBound
            var previousOffset: UInt32? = nil
            for entry in function.addressMap {
                if let previousOffset, entry.nativeOffset <= previousOffset {
                    throw .unsortedAddressMap(functionIndex: function.index, nativeOffset: entry.nativeOffset)
                }
                previousOffset = entry.nativeOffset
            }
        }
        // Stubs are sorted and disjoint, and no stub overlaps a function:
        // walk both sorted lists together.
        previousEnd = 0
        var nextFunction = 0
        for stub in stubs {
            guard stub.codeRange.upperBound <= size, stub.codeRange.lowerBound >= previousEnd else {
                throw .misplacedStub(kind: stub.kind, range: stub.codeRange, moduleSize: size)
            }
            while nextFunction < functions.count, functions[nextFunction].codeRange.upperBound <= stub.codeRange.lowerBound {
                nextFunction += 1
            }
            if nextFunction < functions.count, functions[nextFunction].codeRange.overlaps(stub.codeRange) {
                throw .misplacedStub(kind: stub.kind, range: stub.codeRange, moduleSize: size)
            }
            previousEnd = stub.codeRange.upperBound
        }
    }
}

/// One compiled wasm function.
public struct CodeFunction: Hashable, Sendable {
    /// The function's index in the module's function index space (imports
    /// first).
    public var index: UInt32
    /// The function's name from the name section, if any.
    public var name: String?
    /// The function's native code, as offsets from the module's code base.
    public var codeRange: Range<UInt>
    /// Module offset of the function's body (its entry in the code
    /// section); function offsets are relative to it.
    public var bodyOffset: UInt32
    /// Native offset (from the function start) -> wasm module offset,
    /// sorted by native offset.
    public var addressMap: [AddressMapEntry]

    public init(index: UInt32, name: String?, codeRange: Range<UInt>, bodyOffset: UInt32,
                addressMap: [AddressMapEntry]) {
        self.index = index
        self.name = name
        self.codeRange = codeRange
        self.bodyOffset = bodyOffset
        self.addressMap = addressMap
    }

}

/// Where a run of native code came from in the wasm module.
public struct AddressMapEntry: Hashable, Sendable {
    /// Offset from the function's native start.
    public var nativeOffset: UInt32
    /// Offset of the wasm instruction in the module binary, or
    /// `noWasmOffset` for code that runs no wasm instruction (a prologue).
    public var wasmOffset: UInt32

    public init(nativeOffset: UInt32, wasmOffset: UInt32) {
        self.nativeOffset = nativeOffset
        self.wasmOffset = wasmOffset
    }

    /// The `wasmOffset` of code that belongs to no wasm instruction: a
    /// function's prologue, where a stack-exhaustion trap happens. Such a
    /// frame is printed without an offset, as Wasmtime prints it.
    public static let noWasmOffset = UInt32.max

    /// The module offset, or nil for code of no wasm instruction.
    @inlinable
    public var moduleOffset: UInt32? { wasmOffset == Self.noWasmOffset ? nil : wasmOffset }
}

/// Why a module could not be registered.
public enum CodeRegistryError: Error, Hashable, Sendable, CustomStringConvertible {
    case overlappingModules(new: Range<UInt>, existing: Range<UInt>)
    case functionOutsideModule(functionIndex: UInt32, range: Range<UInt>, moduleSize: UInt)
    case overlappingFunctions(functionIndex: UInt32, range: Range<UInt>)
    case unsortedAddressMap(functionIndex: UInt32, nativeOffset: UInt32)
    case misplacedStub(kind: CodeKind, range: Range<UInt>, moduleSize: UInt)

    public var description: String {
        switch self {
        case .overlappingModules(let new, let existing):
            return "code \(hex(new.lowerBound))..<\(hex(new.upperBound)) overlaps a registered module at \(hex(existing.lowerBound))..<\(hex(existing.upperBound))"
        case .functionOutsideModule(let index, let range, let size):
            return "function \(index) at offsets \(hex(range.lowerBound))..<\(hex(range.upperBound)) lies outside the module's \(size) bytes of code"
        case .overlappingFunctions(let index, let range):
            return "function \(index) at offsets \(hex(range.lowerBound))..<\(hex(range.upperBound)) overlaps the previous function (functions must be sorted and disjoint)"
        case .unsortedAddressMap(let index, let offset):
            return "function \(index)'s address map is not strictly increasing at native offset \(hex(UInt(offset)))"
        case .misplacedStub(let kind, let range, let size):
            return "\(kind) at offsets \(hex(range)) lies outside the module's \(size) bytes of code, overlaps a function or is out of order (stubs must be sorted and disjoint)"
        }
    }
}


extension CodeModule {
    /// `function` as a backtrace prints it: `module!function`, `<unknown>`
    /// for a module without a name, `<wasm function N>` for a function
    /// without one, a Rust or C++ name demangled. Debuggers and profilers
    /// are given the same names (JITTools).
    public func printedName(of function: CodeFunction) -> String {
        (name ?? "<unknown>") + "!" + (function.name.map(Demangling.demangle) ?? "<wasm function \(function.index)>")
    }

    /// `stub` as a backtrace prints it: `module!<entry trampoline (i32) -> ()>`.
    public func printedName(of stub: CodeStub) -> String {
        (name ?? "<unknown>") + "!<" + (stub.name ?? stub.kind.description) + ">"
    }
}
