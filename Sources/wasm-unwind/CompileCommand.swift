import ArgumentParser
import Foundation
import StackCapture
import WasmJIT
@_spi(Tools) import WasmUnwind

struct CompileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile",
        abstract: "Compile a module and print where everything went in its code.",
        discussion: """
            Prints each function's code range, frame size and call sites (return-address \
            offset -> wasm offset, the frame slots holding live references, and the catch \
            clauses of the try_tables around it, innermost first), its trap \
            sites, and the trampolines; --stack-maps prints the stack map table. With --code-out \
            the machine code is written to a file, for example for \
            `objdump -D -b binary -m i386:x86-64 -M intel FILE`.
            """)

    @Argument(help: "The module (.wat or .wasm).")
    var file: String

    @Option(name: .long, help: "Write the machine code to this file.")
    var codeOut: String?

    @Flag(name: .long, help: "Print the stack map table: its maps, its entries and its binary form.")
    var stackMaps = false

    @Option(name: .long, help: "Where wasm -> host calls record the exit fp and pc: in an exit trampoline per import, or inline at the call site.")
    var exitRecording: ExitRecording = .trampoline

    func run() throws {
        let module = try loadModule(engine: Engine(configuration: Engine.Configuration(exitRecording: exitRecording)), path: file)
        let info = module.unwindInfo
        output("module \(module.name ?? "<unknown>"): \(module.codeSize) bytes of code, CFI at \(hex(info.ehFrame)) (\(info.fdeOffsets.count) FDEs), search table at \(hex(info.searchTable))")
        let maps = module.stackMaps
        output("stack maps: \(maps.count) call sites, \(maps.maps.count) distinct maps, \(maps.serialized().count) bytes serialised")
        for function in module.functions {
            let name = function.name ?? "<wasm function \(function.index)>"
            output("function \(function.index) \(name): code \(hex(function.codeRange)), frame \(function.frameSize) bytes, body at \(hex(function.bodyOffset))")
            for site in function.callSites {
                let callee: String
                switch site.callee {
                case .function(let index): callee = "function \(index)"
                case .imported(let index): callee = "import \(index)"
                case .indirect(let type, let table): callee = "indirect, type \(type), table \(table)"
                case .runtime(let instruction): callee = "runtime: \(instruction)"
                }
                let references = site.liveReferenceSlots.isEmpty ? "" :
                    ", references at " + site.liveReferenceSlots.map { "fp\($0)" }.joined(separator: " ")
                output("  call site: return address \(hex(site.returnAddressOffset)) -> wasm \(hex(site.wasmOffset)) (\(callee))\(references)")
                // The innermost try_table's clauses; the enclosing ones by
                // reference (each listed once below: nesting stays linear).
                if let index = site.handlerScope {
                    for handler in function.handlerScopes[index].clauses { output("    handler: \(handler)") }
                    if let parent = function.handlerScopes[index].parent { output("    then the handlers of scope \(parent)") }
                }
            }
            for (index, scope) in function.handlerScopes.enumerated() {
                output("  handler scope \(index)" + (scope.parent.map { " (in scope \($0))" } ?? "") + ": "
                       + scope.clauses.map(\.description).joined(separator: ", "))
            }
            for site in function.trapSites {
                output("  trap site: \(hex(site.codeOffset)) -> " + (site.wasmOffset.map { "wasm \(hex($0))" } ?? "prologue") + " (\(site.code.message))")
            }
        }
        for trampoline in module.trampolines {
            output("\(module.name(of: trampoline)): code \(hex(trampoline.codeRange))")
        }
        if stackMaps {
            let table = module.stackMaps
            let bytes = table.serialized()
            output("stack map table: \(table.count) entries, \(table.maps.count) maps, \(bytes.count) bytes")
            for (index, map) in table.maps.enumerated() {
                let slots = map.isEmpty ? "no references" : "references at " + map.slotOffsets.map { "fp\($0)" }.joined(separator: " ")
                output("  map \(index): frame \(map.frameSize) bytes, \(slots)")
                for handler in table.handlers(of: map) { output("    handler: \(handler)") }
            }
            for (offset, index) in zip(table.offsets, table.mapIndices) {
                output("  return address \(hex(Int(offset))) -> map \(index)")
            }
            output("  binary: " + bytes.map { String(format: "%02x", $0) }.joined(separator: " "))
            if table.hasHandlers {
                for (index, scope) in table.handlerScopes.enumerated() {
                    output("  handler scope \(index)" + (scope.parent.map { " (in scope \($0))" } ?? "") + ": "
                           + scope.clauses.map(\.description).joined(separator: ", "))
                }
                var writer = ByteWriter()
                table.writeHandlerScopes(to: &writer)
                output("  handler scopes, binary: " + writer.bytes.map { String(format: "%02x", $0) }.joined(separator: " "))
            }
        }
        if let codeOut {
            try writeFile(codeOut, module.code.bytes, what: "the machine code")
        }
    }
}
