@_spi(Tools) import WasmUnwind
import WasmParser
import WasmTypes

extension ModuleDescription {
    // MARK: Sections

    /// The type section: a signature per function type (nil for a type the
    /// compiler cannot run, with its error kept for whoever uses it), and
    /// each type's identity within its recursion group.
    mutating func readTypes(_ groups: [RecursiveGroup], errors: inout [Int: CompileError]) {
        for group in groups {
            let first = signatures.count
            for subType in group.types {
                if case .function(let type) = subType.body { writtenTypes.append(type) } else { writtenTypes.append(nil) }
                guard case .function(let type) = subType.body else {
                    signatures.append(nil)
                    continue
                }
                note(type.parameters + type.results)
                do {
                    signatures.append(Signature(
                        parameters: try type.parameters.map { (t) throws(CompileError) in try ValueKind(t, offset: nil) },
                        results: try type.results.map { (t) throws(CompileError) in try ValueKind(t, offset: nil) }))
                } catch {
                    errors[signatures.count] = error
                    signatures.append(nil)
                }
            }
            let members = Array(signatures[first...])
            for position in members.indices {
                typeIdentities.append(TypeIdentity(group: members, position: position))
            }
        }
    }

    /// The import section: functions, tables, the memory, globals, tags.
    mutating func readImports(_ entries: [WasmParser.Import], typeErrors: [Int: CompileError], offset: Int) throws(CompileError) {
        for entry in entries {
            switch entry.descriptor {
            case .function(let typeIndex):
                if let error = typeErrors[Int(typeIndex)] { throw error }
                imports.append(FunctionImport(module: entry.module, name: entry.name,
                                              signature: try signature(atTypeIndex: typeIndex, offset: offset)))
            case .table(let type):
                note([.ref(type.elementType)])
                tableImports.append(TableImport(module: entry.module, name: entry.name,
                                                type: try Self.tableType(type, offset: offset)))
            case .memory(let limits):
                guard memoryImport == nil else { throw .unsupportedFeature("more than one memory", offset: offset) }
                memoryImport = MemoryImport(module: entry.module, name: entry.name,
                                            type: try Self.memoryType(limits, offset: offset))
            case .global(let type):
                note([type.valueType])
                globalImports.append(GlobalImport(module: entry.module, name: entry.name,
                                                  type: try Self.globalType(type, offset: offset)))
            case .tag(let typeIndex):
                if let error = typeErrors[Int(typeIndex)] { throw error }
                try checkTagType(typeIndex, offset: offset)
                tagImports.append(TagImport(module: entry.module, name: entry.name, typeIndex: typeIndex))
            }
        }
    }

    /// The table section, with each table's initializer.
    mutating func readTables(_ entries: [WasmParser.Table], offset: Int) throws(CompileError) {
        for entry in entries {
            note([.ref(entry.type.elementType)])
            var type = try Self.tableType(entry.type, offset: offset)
            if let initializer = entry.initializer {
                type.initializer = try constant(initializer, kind: type.kind, offset: offset,
                                                availableGlobals: globalImports.count)
            }
            tables.append(type)
        }
    }

    /// The global section: each global's type and initializer (which may
    /// read only the globals before it).
    mutating func readGlobals(_ entries: [WasmParser.Global], offset: Int) throws(CompileError) {
        for entry in entries {
            note([entry.type.valueType])
            let type = try Self.globalType(entry.type, offset: offset)
            globals.append(GlobalDefinition(
                type: type,
                initializer: try constant(entry.initializer, kind: type.kind, offset: offset,
                                          availableGlobals: globalImports.count + globals.count)))
        }
    }

    /// The export section; names must be distinct.
    mutating func readExports(_ entries: [WasmParser.Export], offset: Int) throws(CompileError) {
        for entry in entries {
            let export: Export
            switch entry.descriptor {
            case .function(let index): export = .function(index)
            case .table(let index): export = .table(index)
            case .memory(let index): export = .memory(index)
            case .global(let index): export = .global(index)
            case .tag(let index): export = .tag(index)
            }
            guard exports[entry.name] == nil else {
                throw .invalid("duplicate export name \"\(entry.name)\"", offset: offset)
            }
            exports[entry.name] = export
            exportOrder.append(entry.name)
        }
    }

    /// The element section: each segment's mode and items.
    mutating func readElements(_ segments: [WasmParser.ElementSegment], offset: Int) throws(CompileError) {
        for segment in segments {
            note([.ref(segment.type)])
            let kind = try ValueKind(.ref(segment.type), offset: offset)
            let mode: ElementSegment.Mode
            switch segment.mode {
            case .active(let table, let expression):
                mode = .active(table: table, offset: try constant(expression, kind: .i32, offset: offset,
                                                                   availableGlobals: globalCount))
            case .passive: mode = .passive
            case .declarative: mode = .declarative
            }
            let items = try segment.initializer.map { (expression) throws(CompileError) in
                try constant(expression, kind: kind, offset: offset, availableGlobals: globalCount)
            }
            elementSegments.append(ElementSegment(kind: kind, mode: mode, items: items))
        }
    }

    /// The data section: active segments of memory 0, passive segments.
    mutating func readData(_ segments: [WasmParser.DataSegment], offset: Int) throws(CompileError) {
        for segment in segments {
            switch segment {
            case .active(let active):
                guard active.index == 0 else { throw .invalid("data segment for memory \(active.index)", offset: offset) }
                dataSegments.append(DataSegment(
                    mode: .active(offset: try constant(active.offset, kind: .i32, offset: offset,
                                                       availableGlobals: globalCount)),
                    bytes: Array(active.initializer), moduleOffset: active.initializer.startIndex))
            case .passive(let bytes):
                dataSegments.append(DataSegment(mode: .passive, bytes: Array(bytes), moduleOffset: bytes.startIndex))
            }
        }
    }

    // MARK: Checks and conversions

    /// Every index a section names exists: exports, the start function,
    /// segments' tables and functions, the memory data segments need.
    func validateIndices() throws(CompileError) {
        for name in exportOrder {
            switch exports[name]! {
            case .function(let index) where Int(index) >= functionCount:
                throw .invalid("export \"\(name)\" names function \(index), which does not exist", offset: nil)
            case .table(let index) where Int(index) >= tableCount:
                throw .invalid("export \"\(name)\" names table \(index), which does not exist", offset: nil)
            case .memory(let index) where index != 0 || !hasMemory:
                throw .invalid("export \"\(name)\" names memory \(index), which does not exist", offset: nil)
            case .global(let index) where Int(index) >= globalCount:
                throw .invalid("export \"\(name)\" names global \(index), which does not exist", offset: nil)
            case .tag(let index) where Int(index) >= tagCount:
                throw .invalid("export \"\(name)\" names tag \(index), which does not exist", offset: nil)
            default: break
            }
        }
        if let start {
            guard Int(start) < functionCount else { throw .invalid("start function \(start) does not exist", offset: nil) }
            let signature = try self.signature(ofFunction: start, offset: nil)
            guard signature.parameters.isEmpty, signature.results.isEmpty else {
                throw .invalid("start function \(start) has type \(signature), not () -> ()", offset: nil)
            }
        }
        for segment in elementSegments {
            if case .active(let table, _) = segment.mode {
                let type = try tableType(table, offset: nil)
                guard type.kind == segment.kind else {
                    throw .invalid("element segment of \(segment.kind) for a table of \(type.kind)", offset: nil)
                }
            }
            for case .refFunc(let index) in segment.items where Int(index) >= functionCount {
                throw .invalid("element segment names function \(index), which does not exist", offset: nil)
            }
        }
        for segment in dataSegments {
            if case .active = segment.mode, !hasMemory {
                throw .invalid("unknown memory 0: an active data segment without a memory", offset: segment.moduleOffset)
            }
        }
        if let dataCount, Int(dataCount) != dataSegments.count {
            throw .malformed("data count and data section have inconsistent lengths", offset: nil)
        }
    }

    static func tableType(_ type: WasmParser.TableType, offset: Int) throws(CompileError) -> TableType {
        guard !type.limits.isMemory64 else { throw .unsupportedFeature("64-bit tables", offset: offset) }
        let kind = try ValueKind(.ref(type.elementType), offset: offset)
        if let maximum = type.limits.max, maximum < type.limits.min {
            throw .invalid("size minimum must not be greater than maximum", offset: offset)
        }
        return TableType(kind: kind, minimum: type.limits.min, maximum: type.limits.max)
    }

    static func memoryType(_ limits: Limits, offset: Int) throws(CompileError) -> MemoryType {
        guard !limits.isMemory64, !limits.shared else {
            throw .unsupportedFeature("64-bit or shared memory", offset: offset)
        }
        if let maximum = limits.max, maximum < limits.min {
            throw .invalid("size minimum must not be greater than maximum", offset: offset)
        }
        guard limits.min <= 65536, (limits.max ?? 0) <= 65536 else {
            throw .invalid("memory size must be at most 65536 pages (4GiB)", offset: offset)
        }
        return MemoryType(minimum: limits.min, maximum: limits.max)
    }

    static func globalType(_ type: WasmParser.GlobalType, offset: Int) throws(CompileError) -> GlobalType {
        GlobalType(kind: try ValueKind(type.valueType, offset: offset), mutable: type.mutability == .variable)
    }

    /// The 8-byte header every binary starts with: the magic `\0asm` and
    /// version 1. (WasmKit's parser takes an empty file for an empty module.)
    static func checkHeader(_ bytes: [UInt8]) throws(CompileError) {
        let magic: [UInt8] = [0x00, 0x61, 0x73, 0x6D]
        guard bytes.count >= 4 else {
            throw .malformed("expected the magic \\0asm, but the binary is \(bytes.count) bytes long", offset: 0)
        }
        guard Array(bytes.prefix(4)) == magic else {
            throw .malformed("expected the magic \\0asm, found \(bytes.prefix(4).map { hex($0) }.joined(separator: " "))", offset: 0)
        }
        guard bytes.count >= 8 else {
            throw .malformed("expected the 4-byte version, but the binary ends after \(bytes.count) bytes", offset: 4)
        }
        let version = bytes[4..<8].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard version == 1 else { throw .malformed("expected version 1, found \(version)", offset: 4) }
    }

    /// A constant expression of `kind`: `i32.const`, `i64.const`,
    /// `f32.const`, `f64.const`, `ref.null`, `ref.func` or `global.get` (of
    /// an immutable global below `availableGlobals`), combined by `i32.add`,
    /// `i32.sub`, `i32.mul` and their i64 forms (extended constant
    /// expressions); then `end`.
    func constant(_ expression: ConstExpression, kind: ValueKind, offset: Int,
                  availableGlobals: Int) throws(CompileError) -> ConstantExpression {
        let instructions = expression.last == .end ? Array(expression.dropLast()) : expression
        var stack: [(ConstantExpression, ValueKind)] = []
        func operands(_ type: ValueKind) throws(CompileError) -> (ConstantExpression, ConstantExpression) {
            guard stack.count >= 2, stack[stack.count - 1].1 == type, stack[stack.count - 2].1 == type else {
                throw .invalid("type mismatch in a constant expression", offset: offset)
            }
            let b = stack.removeLast().0, a = stack.removeLast().0
            return (a, b)
        }
        for instruction in instructions {
            switch instruction {
            case .i32Const(let value): stack.append((.value(UInt64(UInt32(bitPattern: value))), .i32))
            case .i64Const(let value): stack.append((.value(UInt64(bitPattern: value)), .i64))
            case .f32Const(let value): stack.append((.value(UInt64(value.bitPattern)), .f32))
            case .f64Const(let value): stack.append((.value(value.bitPattern), .f64))
            case .refNull(.abstract(.externRef)), .refNull(.abstract(.noExtern)): stack.append((.refNull, .externref))
            case .refNull(.abstract(.funcRef)), .refNull(.abstract(.noFunc)), .refNull(.concrete):
                stack.append((.refNull, .funcref))
            case .refNull(.abstract(.exnRef)), .refNull(.abstract(.noExn)): stack.append((.refNull, .exnref))
            case .refFunc(let index):
                guard Int(index) < functionCount || functionSignatureIndices.isEmpty else {
                    throw .invalid("unknown function \(index)", offset: offset)
                }
                stack.append((.refFunc(index), .funcref))
            case .globalGet(let index):
                guard Int(index) < availableGlobals else {
                    throw .invalid("unknown global \(index) in a constant expression", offset: offset)
                }
                let type = try globalType(index, offset: offset)
                guard !type.mutable else {
                    throw .invalid("constant expression required: global \(index) is mutable", offset: offset)
                }
                stack.append((.globalGet(index), type.kind))
            case .binary(let operation):
                let arithmetic: ConstantArithmetic, type: ValueKind
                switch operation {
                case .i32Add: (arithmetic, type) = (.add32, .i32)
                case .i32Sub: (arithmetic, type) = (.sub32, .i32)
                case .i32Mul: (arithmetic, type) = (.mul32, .i32)
                case .i64Add: (arithmetic, type) = (.add64, .i64)
                case .i64Sub: (arithmetic, type) = (.sub64, .i64)
                case .i64Mul: (arithmetic, type) = (.mul64, .i64)
                default: throw .invalid("constant expression required: \(operation) is not constant", offset: offset)
                }
                let (a, b) = try operands(type)
                stack.append((.arithmetic(arithmetic, a, b), type))
            default:
                throw .invalid("constant expression required: \(instruction) is not constant", offset: offset)
            }
        }
        guard stack.count == 1, let (result, type) = stack.first else {
            throw .invalid("type mismatch: a constant expression must leave exactly one value", offset: offset)
        }
        guard type == kind else {
            throw .invalid("type mismatch: constant expression of \(type), expected \(kind)", offset: offset)
        }
        return result
    }

    mutating func parseNames(_ section: ArraySlice<UInt8>) {
        var parser = NameSectionParser(stream: StaticByteStreamSource(bytes: section))
        // A broken name section is ignored, as engines do: names are debug info.
        guard let names = try? parser.parseAll() else { return }
        for entry in names {
            switch entry {
            case .moduleName(let name): moduleName = name
            case .functions(let map): functionNames = map
            default: break
            }
        }
    }
}

/// Unsigned LEB128 reading over a byte array.
struct LEBReader {
    let bytes: [UInt8]
    var position: Int

    mutating func unsigned() throws(CompileError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.count else { throw .malformed("LEB128 runs past the end", offset: position) }
            guard shift < 64 else { throw .malformed("LEB128 too long", offset: position) }
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }
}
