import Foundation
import Testing
import WasmJIT

/// The limits Wasmtime (wasmparser) and the web enforce: a module past one
/// is refused by name, as `wasm-tools validate` refuses it; one at the
/// limit compiles. Compiling a hostile module is bounded work.
@Suite("Implementation limits")
struct ImplementationLimitsTests {
    /// A binary module of one function of type `(param i32 x parameters)`
    /// with the given locals declarations (count, value type byte) and
    /// body instructions.
    static func module(parameters: Int = 0, localGroups: [(UInt64, UInt8)] = [], body: [UInt8] = []) -> [UInt8] {
        func leb(_ value: UInt64) -> [UInt8] {
            var value = value, bytes: [UInt8] = []
            repeat {
                var byte = UInt8(value & 0x7F)
                value >>= 7
                if value != 0 { byte |= 0x80 }
                bytes.append(byte)
            } while value != 0
            return bytes
        }
        func section(_ id: UInt8, _ content: [UInt8]) -> [UInt8] { [id] + leb(UInt64(content.count)) + content }
        let type = [0x01, 0x60] + leb(UInt64(parameters)) + [UInt8](repeating: 0x7F, count: parameters) + [0x00]
        let code = leb(UInt64(localGroups.count)) + localGroups.flatMap { leb($0.0) + [$0.1] } + body + [0x0B]
        return [0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00] + section(1, type) + section(3, [0x01, 0x00])
            + section(10, [0x01] + leb(UInt64(code.count)) + code)
    }

    static func compileError(_ binary: [UInt8]) -> String? {
        do {
            _ = try Module(engine: Engine(), binary: binary)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test("50,000 locals, parameters included, compile; one more is refused by name")
    func locals() throws {
        #expect(Self.compileError(Self.module(parameters: 1, localGroups: [(49_999, 0x7E)])) == nil)
        let refused = try #require(Self.compileError(Self.module(parameters: 1, localGroups: [(50_000, 0x7E)])))
        #expect(refused == "invalid module: too many locals: function 0 has 50001 (1 parameters, 50000 declared); the limit is 50000 at module offset 0x17")
    }

    @Test("a locals declaration far past the limit is refused before anything is expanded")
    func hostileLocals() throws {
        // 2^32 - 1 locals, twice: the binary parser would build arrays of
        // them; the scan refuses the first group.
        let binary = Self.module(localGroups: [(0xFFFF_FFFF, 0x7E), (0xFFFF_FFFF, 0x7E)])
        let refused = try #require(Self.compileError(binary))
        #expect(refused == "invalid module: too many locals: function body 0 declares more than 50000 (the limit, parameters included) at module offset 0x17")
        let ninetyNine = try #require(Self.compileError(Self.module(localGroups: [(99_999, 0x7E)])))
        #expect(ninetyNine.contains("too many locals"))
    }

    @Test("parameters past 1,000 are refused")
    func parameters() throws {
        #expect(Self.compileError(Self.module(parameters: 1_000)) == nil)
        #expect(Self.compileError(Self.module(parameters: 1_001)) == "invalid module: too many parameters in type 0: 1001; the limit is 1000")
    }

    @Test("a function body past 7,654,321 bytes is refused")
    func bodySize() throws {
        let nops = [UInt8](repeating: 0x01, count: 7_654_321)
        let refused = try #require(Self.compileError(Self.module(body: nops)))
        #expect(refused.hasPrefix("invalid module: function body 0 is 7654323 bytes; the limit is 7654321"))
    }

    @Test("a section or body size past the end of the binary is malformed, not a crash")
    func sizesPastTheEnd() throws {
        // A custom section claiming 2^32 - 1 bytes, before the code section.
        let binary = Array(Self.module(localGroups: [(1, 0x7F)])[0..<8]) + [0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]
            + Array(Self.module(localGroups: [(1, 0x7F)])[8...])
        #expect(Self.compileError(binary) == "malformed WebAssembly binary at offset 0x9: section 0 is 4294967295 bytes, but only 18 remain")
        let huge: [UInt8] = [0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x0A, 0x06, 0x01,
                             0xFF, 0xFF, 0xFF, 0xFF, 0x0F]
        #expect(Self.compileError(huge)?.contains("malformed") == true)
    }

    @Test("wasm-tools validate draws the same lines", arguments: [(49_999, true), (50_000, false), (99_999, false)])
    func agreesWithWasmTools(declared: Int, valid: Bool) throws {
        let tool = PackagePaths.root.appendingPathComponent(".venv/bin/wasm-tools").path
        try #require(FileManager.default.isExecutableFile(atPath: tool), "make venv installs wasm-tools")
        let directory = try temporaryDirectory("limits")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("m.wasm")
        let binary = Self.module(parameters: 1, localGroups: [(UInt64(declared), 0x7E)])
        try Data(binary).write(to: file)
        let result = try runChild(tool, ["validate", file.path])
        #expect((result.status == 0) == valid, "\(result.stderr)")
        #expect((Self.compileError(binary) == nil) == valid)
    }
}
