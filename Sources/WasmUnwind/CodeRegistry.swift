/// Maps code addresses to wasm modules, functions and module offsets, and
/// says what every piece of JIT code is.
///
/// A module registers its code range; per function, the function's native
/// range and a sorted map from native offset to wasm module offset (one
/// entry where the native code of each wasm instruction starts, plus one for
/// each out-of-line trap stub); and its trampolines and stubs with their
/// `CodeKind`. Lookups are binary searches: module by address, function (or
/// stub) by offset, map entry by offset. This is the one answer to "what
/// code is at this address" (`kind(at:)`, `symbol(for:)`), as the Swift
/// runtime's unwinder asks one image map.
public struct CodeRegistry: Sendable {
    /// Modules sorted by code base; their ranges never overlap.
    public private(set) var modules: [CodeModule] = []

    public init() {}

    /// Adds a module. Fails if its code overlaps a registered module's or its
    /// own tables are inconsistent.
    public mutating func register(_ module: CodeModule) throws(CodeRegistryError) {
        try module.validate()
        let index = insertionIndex(for: module.codeRange.lowerBound)
        if index > 0, modules[index - 1].codeRange.overlaps(module.codeRange) {
            throw .overlappingModules(new: module.codeRange, existing: modules[index - 1].codeRange)
        }
        if index < modules.count, modules[index].codeRange.overlaps(module.codeRange) {
            throw .overlappingModules(new: module.codeRange, existing: modules[index].codeRange)
        }
        modules.insert(module, at: index)
    }

    /// Removes the module whose code starts at `codeBase`; returns whether
    /// there was one.
    @discardableResult
    public mutating func unregister(codeBase: UInt) -> Bool {
        let index = insertionIndex(for: codeBase)
        guard index < modules.count, modules[index].codeRange.lowerBound == codeBase else { return false }
        modules.remove(at: index)
        return true
    }

    /// The index in `modules` of the module whose code contains `address`.
    public func moduleIndex(containing address: UInt) -> Int? {
        let index = insertionIndex(for: address &+ 1)
        guard index > 0, modules[index - 1].codeRange.contains(address) else { return nil }
        return index - 1
    }

    /// The module whose code contains `address`.
    public func module(containing address: UInt) -> CodeModule? {
        let index = insertionIndex(for: address &+ 1)
        guard index > 0, modules[index - 1].codeRange.contains(address) else { return nil }
        return modules[index - 1]
    }

    /// What the code at `address` is, or nil outside every registered
    /// module (and in a module's padding between functions and stubs).
    /// Looks the address up as is: pass `ra - 1` for a return address.
    public func kind(at address: UInt) -> CodeKind? {
        guard let module = module(containing: address) else { return nil }
        return module.kind(atCodeOffset: address - module.codeRange.lowerBound)
    }

    /// The absolute address range of the function or stub that contains
    /// `address` (an unwinder's "procedure"), if any.
    public func codeRange(containing address: UInt) -> Range<UInt>? {
        guard let module = module(containing: address) else { return nil }
        let offset = address - module.codeRange.lowerBound
        let base = module.codeRange.lowerBound
        if let function = module.functionIndex(containing: offset) {
            let range = module.functions[function].codeRange
            return (base + range.lowerBound)..<(base + range.upperBound)
        }
        if let stub = module.stubIndex(containing: offset) {
            let range = module.stubs[stub].codeRange
            return (base + range.lowerBound)..<(base + range.upperBound)
        }
        return nil
    }

    /// What the frame's code is: module, function and offsets. A return
    /// address is looked up at `ra - 1`, a trap pc as is.
    public func symbol(for address: FrameAddress) -> FrameSymbol? {
        let pc = address.adjustedProgramCounter
        guard let module = module(containing: pc) else { return nil }
        return module.symbol(atCodeOffset: pc - module.codeRange.lowerBound)
    }

    /// Where an address's code is, as positions in the registry's tables,
    /// without copying names or maps: the form for hot paths (profilers,
    /// a symbolication per frame). `symbol(for:)` gives the full answer.
    public struct Resolution: Hashable, Sendable {
        /// Index in `modules`.
        public var module: Int
        /// Index in that module's `functions`, if the address is in one.
        public var function: Int?
        /// The wasm module offset, if the function's address map has one.
        public var moduleOffset: UInt32?
    }

    /// `address` looked up (a return address at `ra - 1`) without copies.
    public func resolve(_ address: FrameAddress) -> Resolution? {
        let pc = address.adjustedProgramCounter
        let moduleIndex = insertionIndex(for: pc &+ 1) - 1
        guard moduleIndex >= 0, modules[moduleIndex].codeRange.contains(pc) else { return nil }
        let offset = pc - modules[moduleIndex].codeRange.lowerBound
        return modules[moduleIndex].functions.withUnsafeBufferPointer { functions in
            let index = functions.prefixCount { $0.codeRange.lowerBound <= offset } - 1
            guard index >= 0, functions[index].codeRange.contains(offset) else {
                return Resolution(module: moduleIndex, function: nil, moduleOffset: nil)
            }
            let native = offset - functions[index].codeRange.lowerBound
            let wasm = functions[index].addressMap.withUnsafeBufferPointer { map -> UInt32? in
                let entry = map.prefixCount { UInt($0.nativeOffset) <= native } - 1
                return entry >= 0 ? map[entry].moduleOffset : nil
            }
            return Resolution(module: moduleIndex, function: index, moduleOffset: wasm)
        }
    }

    /// `frame` with what the registry knows of its code.
    public func symbolicate(_ frame: Frame) -> SymbolicatedFrame {
        SymbolicatedFrame(frame: frame, symbol: symbol(for: frame.address))
    }

    /// Every frame of `backtrace`, symbolicated.
    public func symbolicate(_ backtrace: Backtrace) -> SymbolicatedBacktrace {
        SymbolicatedBacktrace(frames: backtrace.frames.map(symbolicate), error: backtrace.error,
                              truncation: backtrace.truncation)
    }

    /// First index whose module starts at or above `address`.
    private func insertionIndex(for address: UInt) -> Int {
        modules.prefixCount { $0.codeRange.lowerBound < address }
    }
}

/// One module's code as the registry sees it.
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

    /// The index in `functions` of the function containing `offset`.
    public func functionIndex(containing offset: UInt) -> Int? {
        let index = functions.prefixCount { $0.codeRange.lowerBound <= offset } - 1
        return index >= 0 && functions[index].codeRange.contains(offset) ? index : nil
    }

    /// The index in `stubs` of the stub containing `offset`.
    public func stubIndex(containing offset: UInt) -> Int? {
        let index = stubs.prefixCount { $0.codeRange.lowerBound <= offset } - 1
        return index >= 0 && stubs[index].codeRange.contains(offset) ? index : nil
    }

    /// What the code at `offset` (from the code base) is.
    public func kind(atCodeOffset offset: UInt) -> CodeKind? {
        if functionIndex(containing: offset) != nil { return .wasmFunction }
        return stubIndex(containing: offset).map { stubs[$0].kind }
    }

    /// The function or stub containing `offset` (from the code base) and,
    /// in a function, where in the wasm module that code came from.
    public func symbol(atCodeOffset offset: UInt) -> FrameSymbol? {
        guard let index = functionIndex(containing: offset) else {
            return FrameSymbol(moduleName: name, function: nil, stub: stubIndex(containing: offset).map { stubs[$0] },
                               moduleOffset: nil)
        }
        let function = functions[index]
        let moduleOffset = function.moduleOffset(atFunctionOffset: offset - function.codeRange.lowerBound)
        return FrameSymbol(moduleName: name, function: function, moduleOffset: moduleOffset)
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

    /// The wasm offset of the last map entry at or before `offset`.
    public func moduleOffset(atFunctionOffset offset: UInt) -> UInt32? {
        let index = addressMap.prefixCount { UInt($0.nativeOffset) <= offset } - 1
        return index >= 0 ? addressMap[index].moduleOffset : nil
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

/// What a frame's code is.
public struct FrameSymbol: Hashable, Sendable {
    /// The module's name, if it has one.
    public var moduleName: String?
    /// The function, if the address lies in one.
    public var function: CodeFunction?
    /// The trampoline or stub, if the address lies in one.
    public var stub: CodeStub?
    /// Offset of the wasm instruction in the module binary.
    public var moduleOffset: UInt32?

    public init(moduleName: String?, function: CodeFunction?, stub: CodeStub? = nil, moduleOffset: UInt32?) {
        self.moduleName = moduleName
        self.function = function
        self.stub = stub
        self.moduleOffset = moduleOffset
    }

    /// What the code is: nil for an address in the module that is in no
    /// function or stub (padding).
    public var kind: CodeKind? { function != nil ? .wasmFunction : stub?.kind }

    /// The function's index, if the address lies in one.
    public var functionIndex: UInt32? { function?.index }
    /// The function's name, if it has one.
    public var functionName: String? { function?.name }
    /// Offset of the instruction from the function's body start.
    public var functionOffset: UInt32? {
        guard let function, let moduleOffset, moduleOffset >= function.bodyOffset else { return nil }
        return moduleOffset - function.bodyOffset
    }
}

/// A frame and what its code is (nil when the address is in no registered
/// module).
public struct SymbolicatedFrame: Hashable, Sendable {
    public var frame: Frame
    public var symbol: FrameSymbol?

    public init(frame: Frame, symbol: FrameSymbol?) {
        self.frame = frame
        self.symbol = symbol
    }
}

extension RandomAccessCollection where Index == Int {
    /// How many leading elements satisfy `isBefore`, in a collection where
    /// every element that does comes before every element that does not
    /// (sorted tables): a binary search.
    @inlinable
    func prefixCount(while isBefore: (Element) -> Bool) -> Int {
        var low = startIndex, high = endIndex
        while low < high {
            let mid = (low &+ high) >> 1
            if isBefore(self[mid]) { low = mid + 1 } else { high = mid }
        }
        return low - startIndex
    }
}
