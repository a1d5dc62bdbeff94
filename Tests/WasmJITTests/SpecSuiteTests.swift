import Foundation
import Testing
import WasmJIT
import WastRunner

/// The official WebAssembly spec tests (fixtures/spec, the core suite's
/// files for the features the runtime implements) through
/// `WastRunner`, the engine of `wasm-unwind wast`. Every directive of every
/// file must pass, except those skipped because they need a proposal
/// outside the runtime — each skip named — and the one known failure below.
@Suite("The WebAssembly spec test suite")
struct SpecSuiteTests {
    /// Every script in fixtures/spec.
    static let files: [String] = {
        let directory = PackagePaths.fixture("spec")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".wast") }.sorted()
    }()

    /// The exception-handling scripts: every directive passes, none skipped.
    static let exceptionScripts = ["tag.wast", "throw.wast", "throw_ref.wast", "try_table.wast"]

    /// Proposals outside the runtime: the only reasons a directive may be
    /// skipped.
    static let allowedSkips: Set<String> = [
        "SIMD (v128)", "typed function references", "garbage collection (GC proposal)",
        "multiple memories", "threads (shared memory, atomics)", "64-bit memory",
    ]

    /// WasmKit 0.4.2's binary decoder reads the sub-opcode after the 0xFC
    /// prefix as one byte (BinaryInstructionDecoder.swift: `claimNextByte`)
    /// where the spec has a LEB128 u32, so it calls a valid module with an
    /// over-long `FC 80 00` "illegal opcode". A parser defect, not ours; a
    /// fixed WasmKit makes this list empty and this test fail until it is.
    static let knownFailures: [String: [Int]] = ["binary-leb128.wast": [964]]

    @Test("every directive passes or is skipped for a named proposal", arguments: files)
    func script(_ name: String) throws {
        let result = try WastRunner().run(path: PackagePaths.fixture("spec/" + name))
        #expect(result.failures.map(\.line) == Self.knownFailures[name] ?? [], "\(result.summary)")
        #expect(result.notParsed.isEmpty, "\(result.summary)")
        #expect(Set(result.skipped.keys).isSubset(of: Self.allowedSkips), "\(result.summary)")
        #expect(result.passed + result.skippedCount > 0, "\(result.summary)")
    }

    @Test("the exception-handling scripts pass completely, in both exit-recording modes",
          arguments: exceptionScripts, [ExitRecording.trampoline, .inline])
    func exceptions(_ name: String, _ mode: ExitRecording) throws {
        let runner = WastRunner(configuration: Engine.Configuration(exitRecording: mode))
        let result = try runner.run(path: PackagePaths.fixture("spec/" + name))
        #expect(result.isClean, "\(result.summary)")
        #expect(result.passed >= 10, "\(result.summary)")
    }

    /// The files whose calls cross instances and reach host functions, run
    /// again with the exit recorded at the call site.
    @Test("the calling scripts pass with inline exit recording",
          arguments: ["call.wast", "call_indirect.wast", "imports.wast", "linking.wast", "return_call.wast",
                      "return_call_indirect.wast", "func_ptrs.wast", "start.wast"])
    func inline(_ name: String) throws {
        let runner = WastRunner(configuration: Engine.Configuration(exitRecording: .inline))
        let result = try runner.run(path: PackagePaths.fixture("spec/" + name))
        #expect(result.failures.isEmpty, "\(result.summary)")
        #expect(Set(result.skipped.keys).isSubset(of: Self.allowedSkips), "\(result.summary)")
    }

    @Test("a failed assertion is reported with its line, not counted as passed")
    func failuresAreReported() throws {
        let directory = try temporaryDirectory("wast-failure")
        let path = directory.appendingPathComponent("wrong.wast").path
        try """
            (module (func (export "one") (result i32) (i32.const 1)))
            (assert_return (invoke "one") (i32.const 2))
            (assert_trap (invoke "one") "unreachable")
            (assert_invalid (module (func (result i32) (i32.const 1))) "type mismatch")
            (assert_return (invoke "one") (i32.const 1))
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try WastRunner().run(path: path)
        #expect(result.passed == 2)
        #expect(result.failures.map(\.line) == [2, 3, 4])
        #expect(result.failures[0].message.contains("returned [1], expected [i32 2]"))
    }

    @Test("`wasm-unwind wast` prints per-file counts and fails on a failed directive")
    func command() throws {
        let ok = try runCLI(["wast", PackagePaths.fixture("spec/fac.wast"), PackagePaths.fixture("spec/memory_grow.wast")])
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("fac.wast: 8 passed, 0 failed, 0 skipped"))
        #expect(ok.stdout.contains("memory_grow.wast: 0 passed, 0 failed, 51 skipped\n  skipped 51: multiple memories"))
        #expect(ok.stdout.contains("2 files: 8 passed, 0 failed, 51 skipped, 0 not parsed"))

        let directory = try temporaryDirectory("wast-command")
        let path = directory.appendingPathComponent("bad.wast").path
        try "(module (func (export \"f\")))\n(assert_return (invoke \"f\") (i32.const 1))\n(assert_bogus (invoke \"f\"))\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let failed = try runCLI(["wast", path])
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("bad.wast: 1 passed, 1 failed, 0 skipped, 1 not parsed"))
        #expect(failed.stdout.contains("FAILED line 2: returned [], expected [i32 1]"))
        #expect(failed.stdout.contains("not parsed: line 3:"))
    }

    @Test("a script with a stray `)`, plain text or nothing in it fails, naming the line; every directive before a stray still runs")
    func unconsumedScript() throws {
        let directory = try temporaryDirectory("wast-stray")
        defer { try? FileManager.default.removeItem(at: directory) }
        func run(_ text: String) throws -> (status: Int32, stdout: String, stderr: String) {
            let path = directory.appendingPathComponent("script.wast").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return try runCLI(["wast", path])
        }
        // The failing assertion after the stray `)` was never run: 2 passed, exit 0.
        let stray = try run("(module (func (export \"f\") (result i32) i32.const 1))\n(assert_return (invoke \"f\") (i32.const 1))\n)\n(assert_return (invoke \"f\") (i32.const 2))\n")
        #expect(stray.status == 1)
        #expect(stray.stdout.contains("not parsed: line 3: `)` outside any directive"), "\(stray.stdout)")
        let plain = try run("just some text\n")
        #expect(plain.status == 1 && plain.stdout.contains("not parsed: line 1: `just some text` outside any directive"), "\(plain.stdout)")
        let empty = try run(";; only a comment\n")
        #expect(empty.status == 1 && empty.stdout.contains("no directives"), "\(empty.stdout)")
        // Comments, strings with parentheses and nested block comments are
        // not strays; lines stay right past them.
        let tricky = try run("(; a (; nested ;) comment ;)\n(module (func (export \")f(\") (result i32) i32.const 1)) ;; )\n\n(assert_return (invoke \")f(\") (i32.const 2))\n")
        #expect(tricky.status == 1 && tricky.stdout.contains("FAILED line 4:"), "\(tricky.stdout)")
    }
}
