import WasmCoredumpFormat
import WasmDWARF
import WasmUnwind

// How `dump` shows a standard wasm coredump, as text and as JSON.

extension CoredumpReport {
    /// A frame's module as the backtrace names it: the name section's name,
    /// else the recorded name's last path component.
    func moduleName(_ index: Int) -> String {
        if let name = symbols[index]?.moduleName { return name }
        let recorded = modules[index]
        return recorded.split(separator: "/").last.map(String.init) ?? recorded
    }

    func functionName(_ frame: WasmCoredump.Frame) -> String {
        symbols[module(of: frame)]?.functionNames[frame.function] ?? "<wasm function \(frame.function)>"
    }

    func moduleOffset(_ frame: WasmCoredump.Frame) -> Int? {
        symbols[module(of: frame)]?.moduleOffset(function: frame.function, codeOffset: frame.codeOffset)
    }

    func localName(_ frame: WasmCoredump.Frame, _ local: Int) -> String? {
        symbols[module(of: frame)]?.localNames[frame.function]?[UInt32(local)]
    }

    /// The source variables (DWARF) in a local or operand of a frame.
    func variables(thread: Int, frame index: Int, _ place: WasmPlace) -> [String] {
        source(thread: thread, frame: index)?.variables[place] ?? []
    }

    /// How text names a local: its source variables when any are there,
    /// else its name-section name, else its index.
    func displayName(thread: Int, frame index: Int, _ local: Int) -> String {
        let variables = variables(thread: thread, frame: index, .local(UInt32(local)))
        if !variables.isEmpty { return variables.joined(separator: "/") }
        return localName(threads[thread].frames[index], local) ?? "local \(local)"
    }
}

extension TextFormatter {
    /// The summary line, then each thread's frames, newest first, each with
    /// its locals and operand stack (bottom first).
    public func render(_ report: CoredumpReport) -> String {
        let pages = report.memories.reduce(UInt64(0)) { $0 + $1.pages }
        let data = report.memories.reduce(0) { $0 + $1.bytes }
        var lines = ["\(report.file): wasm coredump of \(report.processName): \(counted(report.modules.count, "module")), "
                     + "\(counted(report.instances.count, "instance")), \(counted(report.memories.count, "memory", "memories")) "
                     + "(\(counted(Int(pages), "page")), \(counted(data, "byte")) of data), \(counted(report.globals.count, "global"))"]
        for (threadIndex, thread) in report.threads.enumerated() {
            lines.append("thread \(thread.name): \(counted(thread.frames.count, "frame"))")
            for (index, frame) in thread.frames.enumerated() {
                let offset = report.moduleOffset(frame).map { "0x" + String($0, radix: 16) }
                    ?? "+0x" + String(frame.codeOffset, radix: 16)
                let module = report.moduleName(report.module(of: frame))
                lines.append(String(repeating: " ", count: max(0, 4 - String(index).count)) + "\(index): "
                             + String(repeating: " ", count: max(0, 8 - offset.count)) + "\(offset) - \(module)!\(report.functionName(frame))"
                             + " (instance \(frame.instance), function \(frame.function))")
                let symbols = report.source(thread: threadIndex, frame: index)?.symbols ?? []
                for symbol in symbols {
                    if symbols.count > 1 { lines.append("                - " + (symbol.name.map(Demangling.demangle) ?? "<inlined function>")) }
                    if let file = symbol.file {
                        lines.append("                    at " + file + (symbol.line.map { ":\($0):\(symbol.column ?? 0)" } ?? ""))
                    }
                }
                let locals = frame.locals.indices.map { local in
                    "\(report.displayName(thread: threadIndex, frame: index, local)) = \(frame.locals[local])"
                }
                lines.append("             locals: " + (locals.isEmpty ? "none" : locals.joined(separator: ", ")))
                let stack = frame.stack.indices.map { operand in
                    let variables = report.variables(thread: threadIndex, frame: index, .operand(UInt32(operand)))
                    return (variables.isEmpty ? "" : variables.joined(separator: "/") + " = ") + frame.stack[operand].description
                }
                lines.append("             stack: " + (stack.isEmpty ? "empty" : stack.joined(separator: ", ")))
            }
        }
        for warning in report.warnings { lines.append("warning: \(warning)") }
        return lines.joined(separator: "\n")
    }

    func counted(_ count: Int, _ singular: String, _ plural: String? = nil) -> String {
        "\(count) " + (count == 1 ? singular : plural ?? singular + "s")
    }
}

extension JSONFormatter {
    public func json(_ report: CoredumpReport) -> JSONValue {
        .object([
            ("file", .string(report.file)),
            ("coredump", .object([
                ("process", .string(report.processName)),
                ("modules", .array(report.modules.indices.map { index in
                    .object([("name", .string(report.modules[index])), ("found", .bool(report.symbols[index] != nil))])
                })),
                ("instances", .array(report.instances.map { instance in
                    .object([("module", .integer(Int64(instance.module))),
                             ("memories", .array(instance.memories.map { .integer(Int64($0)) })),
                             ("globals", .array(instance.globals.map { .integer(Int64($0)) }))])
                })),
                ("memories", .array(report.memories.map { memory in
                    .object([("pages", .integer(Int64(memory.pages))), ("data_bytes", .integer(Int64(memory.bytes)))])
                })),
                ("globals", .array(report.globals.map { global in
                    .object([("type", .string(global.type.description)), ("bits", .string("0x" + String(global.bits, radix: 16)))])
                })),
                ("threads", .array(report.threads.enumerated().map { threadIndex, thread in
                    .object([("name", .string(thread.name)), ("frames", .array(thread.frames.enumerated().map { frameIndex, frame in
                        let source = report.source(thread: threadIndex, frame: frameIndex)
                        return .object([
                            ("instance", .integer(Int64(frame.instance))),
                            ("module", .string(report.moduleName(report.module(of: frame)))),
                            ("function", .integer(Int64(frame.function))),
                            ("function_name", report.symbols[report.module(of: frame)]?.functionNames[frame.function].map(JSONValue.string) ?? .null),
                            ("code_offset", .integer(Int64(frame.codeOffset))),
                            ("module_offset", report.moduleOffset(frame).map { .integer(Int64($0)) } ?? .null),
                            ("symbols", .array((source?.symbols ?? []).map(json))),
                            ("locals", .array(frame.locals.enumerated().map { index, value in
                                .object([("index", .integer(Int64(index))),
                                         ("name", report.localName(frame, index).map(JSONValue.string) ?? .null),
                                         ("variables", .array((source?.variables[.local(UInt32(index))] ?? []).map(JSONValue.string)))]
                                        + json(value))
                            })),
                            ("stack", .array(frame.stack.enumerated().map { index, value in
                                .object([("variables", .array((source?.variables[.operand(UInt32(index))] ?? []).map(JSONValue.string)))]
                                        + json(value))
                            })),
                        ])
                    }))])
                })),
                ("warnings", .array(report.warnings.map(JSONValue.string))),
            ])),
        ])
    }

    /// A value: its type (null when missing) and value — integers as
    /// numbers, floats as their bits and their number (or "nan:0x...").
    func json(_ value: WasmCoredump.Value) -> [(String, JSONValue)] {
        switch value {
        case .missing: return [("type", .null), ("value", .null)]
        case .i32(let v): return [("type", .string("i32")), ("value", .integer(Int64(v)))]
        case .i64(let v): return [("type", .string("i64")), ("value", .integer(v))]
        case .f32(let bits):
            let number = Float(bitPattern: bits)
            return [("type", .string("f32")), ("bits", .string("0x" + String(bits, radix: 16))),
                    ("value", number.isNaN || number.isInfinite ? .string("\(value)".dropFirst(4).description) : .number(Double(number)))]
        case .f64(let bits):
            let number = Double(bitPattern: bits)
            return [("type", .string("f64")), ("bits", .string("0x" + String(bits, radix: 16))),
                    ("value", number.isNaN || number.isInfinite ? .string("\(value)".dropFirst(4).description) : .number(number))]
        }
    }
}
