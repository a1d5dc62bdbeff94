/// A parameter or variable of a function: its DIE (for its name) and its
/// location, valid where `scope` says (its lexical block; empty: the whole
/// function).
struct VariableNode {
    var entryOffset: Int
    var location: AttributeValue
    var scope: [Range<UInt64>]
}

/// Where a source variable's value is in a wasm frame.
public enum WasmPlace: Hashable, Sendable {
    /// The function's local of this index (parameters first).
    case local(UInt32)
    /// The operand stack's entry of this index, counted from the bottom of
    /// the function's operand stack (LLVM's `TI_OPERAND_STACK`).
    case operand(UInt32)
}

/// DWARF's wasm location operation (`DW_OP_WASM_location`, in LLVM's and
/// the WebAssembly tool conventions' DWARF): a kind (0 a local, 1 a global,
/// 2 an operand-stack entry, 3 a global with a fixed 4-byte index), then
/// the index.
enum WasmLocation {
    static let operation: UInt8 = 0xed
    static let stackValue: UInt8 = 0x9f
    static let local: UInt64 = 0
    static let operand: UInt64 = 2
}

extension DebugSections {
    /// The wasm local or operand a variable is in at `address` — when its
    /// location there is exactly `DW_OP_WASM_location 0 N` or `2 N`
    /// (optionally then `DW_OP_stack_value`); nil for anything else
    /// (memory, a global, a constant, pieces, or no location there).
    /// A location list says where it holds itself; a single location
    /// holds in the variable's lexical block.
    func place(of variable: VariableNode, at address: UInt64, unit: UnitHeader, root: UnitRoot) throws(DWARFError) -> WasmPlace? {
        switch variable.location {
        case .block(let range):
            if !variable.scope.isEmpty, !variable.scope.contains(where: { $0.contains(address) }) { return nil }
            return try local(in: DWARFCursor(info, section: ".debug_info", offset: range.lowerBound, end: range.upperBound))
        case .sectionOffset(let offset) where unit.version >= 5:
            return try locationList(at: offset, address, unit: unit, root: root)
        case .sectionOffset(let offset), .unsigned(let offset):
            return try legacyLocationList(at: offset, address, unit: unit, root: root)
        case .locationListIndex(let index):
            let offset = try offsetTableEntry(index, of: loclists, ".debug_loclists", base: root.loclistsBase, unit: unit,
                                              "location list index \(index) inside the offsets table", "a location list offset")
            return try locationList(at: root.loclistsBase &+ offset, address, unit: unit, root: root)
        default:
            return nil
        }
    }

    /// The local or operand an expression names, if it is only that.
    private func local(in expression: DWARFCursor) throws(DWARFError) -> WasmPlace? {
        var cursor = expression
        guard !cursor.isAtEnd, try cursor.u8("an operation") == WasmLocation.operation else { return nil }
        let kind = try cursor.uleb("a wasm location kind")
        guard kind == WasmLocation.local || kind == WasmLocation.operand else { return nil }
        let index = try cursor.uleb("a wasm location index")
        if !cursor.isAtEnd, try cursor.u8("an operation") != WasmLocation.stackValue { return nil }
        guard cursor.isAtEnd, let place = UInt32(exactly: index) else { return nil }
        return kind == WasmLocation.local ? .local(place) : .operand(place)
    }

    /// A `.debug_loc` list (DWARF 2 to 4): the place of its entry covering
    /// `address`.
    private func legacyLocationList(at offset: UInt64, _ address: UInt64, unit: UnitHeader, root: UnitRoot) throws(DWARFError) -> WasmPlace? {
        guard offset < UInt64(loc.count) else {
            throw DWARFError(section: ".debug_loc", offset: Int(clamping: offset), expected: "a location list inside the section")
        }
        var cursor = DWARFCursor(loc, section: ".debug_loc", offset: Int(offset))
        let largest: UInt64 = unit.addressSize == 4 ? 0xffff_ffff : .max
        var base = root.lowPC
        while true {
            let begin = try cursor.unsigned(size: unit.addressSize, "a location's start")
            let end = try cursor.unsigned(size: unit.addressSize, "a location's end")
            if begin == 0 && end == 0 { return nil }
            if begin == largest { base = end; continue }
            let expression = try cursor.sub(UInt64(try cursor.u16("an expression length")), "an expression")
            if (base &+ begin..<max(base &+ begin, base &+ end)).contains(address) { return try local(in: expression) }
        }
    }

    /// A `.debug_loclists` list (DWARF 5): the place of its entry covering
    /// `address`.
    private func locationList(at offset: UInt64, _ address: UInt64, unit: UnitHeader, root: UnitRoot) throws(DWARFError) -> WasmPlace? {
        guard offset < UInt64(loclists.count) else {
            throw DWARFError(section: ".debug_loclists", offset: Int(clamping: offset), expected: "a location list inside the section")
        }
        var cursor = DWARFCursor(loclists, section: ".debug_loclists", offset: Int(offset))
        var base = root.lowPC
        var fallback: DWARFCursor?
        func expression() throws(DWARFError) -> DWARFCursor { try cursor.sub(try cursor.uleb("an expression length"), "an expression") }
        while true {
            var range: Range<UInt64>?
            switch try cursor.u8("a location list entry kind") {
            case 0: return try fallback.flatMap { expression throws(DWARFError) in try local(in: expression) }
            case 1: base = try indexedAddress(try cursor.uleb("a base address index"), unit: unit, root: root)
            case 2:
                let low = try indexedAddress(try cursor.uleb("a start index"), unit: unit, root: root)
                range = low..<max(low, try indexedAddress(try cursor.uleb("an end index"), unit: unit, root: root))
            case 3:
                let low = try indexedAddress(try cursor.uleb("a start index"), unit: unit, root: root)
                range = low..<max(low, low &+ (try cursor.uleb("a length")))
            case 4:
                let low = base &+ (try cursor.uleb("a start offset"))
                range = low..<max(low, base &+ (try cursor.uleb("an end offset")))
            case 5: fallback = try expression()
            case 6: base = try cursor.unsigned(size: unit.addressSize, "a base address")
            case 7:
                let low = try cursor.unsigned(size: unit.addressSize, "a start")
                range = low..<max(low, try cursor.unsigned(size: unit.addressSize, "an end"))
            case 8:
                let low = try cursor.unsigned(size: unit.addressSize, "a start")
                range = low..<max(low, low &+ (try cursor.uleb("a length")))
            case let kind:
                throw cursor.error("a location list entry kind 0 to 8, found \(kind)")
            }
            if let range {
                let entry = try expression()
                if range.contains(address) { return try local(in: entry) }
            }
        }
    }
}
