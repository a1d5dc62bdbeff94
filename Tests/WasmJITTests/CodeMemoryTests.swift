import Foundation
import Testing
import WasmJIT

@Suite("Code memory")
struct CodeMemoryTests {
    /// The permissions of the mapping containing `address` in /proc/self/maps.
    func permissions(of address: UInt) throws -> String? {
        let maps = readProcFile("/proc/self/maps")
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ")
            let range = fields[0].split(separator: "-")
            guard let low = UInt(range[0], radix: 16), let high = UInt(range[1], radix: 16) else { continue }
            if (low..<high).contains(address) { return String(fields[1]) }
        }
        return nil
    }

    @Test("compiled code is read-execute, never writable")
    func readExecute() throws {
        let module = try Module(engine: Engine(), text: #"(module (func (export "f") (result i32) i32.const 1))"#)
        let found = try permissions(of: module.code.baseAddress)
        #expect(found == "r-xp", "\(String(describing: found))")
        #expect(try permissions(of: module.code.range.upperBound - 1) == "r-xp")
    }

    @Test("no mapping in the process is writable and executable at once")
    func noWritableExecutableMapping() throws {
        let modules = try (0..<8).map { index in
            try Module(engine: Engine(), text: "(module (func (export \"f\") (result i32) i32.const \(index)))")
        }
        let maps = readProcFile("/proc/self/maps")
        #expect(maps.contains("r-xp"))
        let writableExecutable = maps.split(separator: "\n").filter { line in
            let permissions = line.split(separator: " ")[1]
            return permissions.contains("w") && permissions.contains("x")
        }
        #expect(writableExecutable.isEmpty, "\(writableExecutable)")
        #expect(modules.count == 8)
    }

    /// The executable mapping that contains `address`: its `start-end`.
    func executableMapping(containing address: UInt) -> String? {
        for line in readProcFile("/proc/self/maps").split(separator: "\n") {
            let fields = line.split(separator: " ")
            let range = fields[0].split(separator: "-")
            guard let low = UInt(range[0], radix: 16), let high = UInt(range[1], radix: 16) else { continue }
            if (low..<high).contains(address), fields[1] == "r-xp" { return String(fields[0]) }
        }
        return nil
    }

    @Test("dropping a module unmaps its code")
    func unmapped() throws {
        // Code of an unusual size: tests on other threads compile small
        // modules all the time, and one may be mapped where this one was.
        let functions = (0..<97).map { "(func (export \"f\($0)\") (result i32) i32.const \($0))" }.joined()
        var module: Module? = try Module(engine: Engine(), text: "(module \(functions))")
        let address = module!.code.baseAddress
        let mapping = try #require(executableMapping(containing: address))
        module = nil
        #expect(executableMapping(containing: address) != mapping, "\(mapping) is still mapped executable")
    }
}
