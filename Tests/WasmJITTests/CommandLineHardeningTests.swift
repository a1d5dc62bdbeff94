import Foundation
import Testing

/// The command line on bad input and in odd situations: one clear error,
/// never a crash, a hang or a silently wrong answer.
@Suite("wasm-unwind on bad input")
struct CommandLineHardeningTests {
    /// Writes `contents` to `name` in a fresh directory; returns the path.
    func file(_ name: String, _ contents: [UInt8]) throws -> String {
        let directory = try temporaryDirectory("input")
        let path = directory.appendingPathComponent(name).path
        try Data(contents).write(to: URL(fileURLWithPath: path))
        return path
    }

    func file(_ name: String, _ text: String) throws -> String { try file(name, Array(text.utf8)) }

    /// A module whose `f` export nests `depth` folded blocks.
    func nested(_ depth: Int) -> String {
        "(module (func (export \"f\")" + String(repeating: "(block ", count: depth) + String(repeating: ")", count: depth) + "))"
    }

    @Test("deeply nested text: 3,000 levels run; past the documented 10,000 an error says where")
    func deepNesting() throws {
        let deep = try runCLI(["run", try file("deep.wat", nested(3000)), "--invoke", "f"])
        #expect(deep.status == 0, "\(deep.stderr)")
        let path = try file("deeper.wat", nested(10_001))
        let tooDeep = try runCLI(["run", path, "--invoke", "f"])
        #expect(tooDeep.status == 1)
        // `(module (func (export "f")` is 26 characters deep 2; the 9,999th
        // `(block ` opens level 10,001.
        #expect(tooDeep.stderr == "error: \(path):1:\(26 + 7 * 9998 + 1): parentheses nest deeper than 10000 levels (the text parser's limit)\n")
    }

    @Test("a .wasm is read as a binary: empty, short and truncated files are binary errors with the offset")
    func binaryErrors() throws {
        let empty = try runCLI(["run", try file("empty.wasm", [UInt8]())])
        #expect(empty.status == 1)
        #expect(empty.stderr.hasSuffix("empty.wasm: malformed WebAssembly binary at offset 0x0: expected the magic \\0asm, but the binary is 0 bytes long\n"))
        let short = try runCLI(["run", try file("short.wasm", [0x00, 0x61, 0x73])])
        #expect(short.stderr.hasSuffix("short.wasm: malformed WebAssembly binary at offset 0x0: expected the magic \\0asm, but the binary is 3 bytes long\n"))
        let noVersion = try runCLI(["run", try file("header.wasm", [0x00, 0x61, 0x73, 0x6D, 0x01])])
        #expect(noVersion.stderr.hasSuffix("header.wasm: malformed WebAssembly binary at offset 0x4: expected the 4-byte version, but the binary ends after 5 bytes\n"))
        // A type section that claims more bytes than the file has.
        let truncated = try runCLI(["run", try file("cut.wasm", [0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05])])
        #expect(truncated.status == 1)
        #expect(truncated.stderr.hasSuffix("cut.wasm: malformed WebAssembly binary at offset 0x9: section 1 is 5 bytes, but only 0 remain\n"))
    }

    @Test("a .wat is text even when it looks like a binary; another name is sniffed by the magic")
    func fileKinds() throws {
        let binary: [UInt8] = [0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00]
        let wat = try runCLI(["run", try file("binary.wat", binary)])
        #expect(wat.status == 1)
        #expect(wat.stderr.contains("binary.wat"))
        #expect(!wat.stderr.contains("malformed WebAssembly binary"))
        // An empty binary module under another name runs (nothing to run,
        // and it says so).
        let sniffedBinary = try runCLI(["run", try file("module.bin", binary)])
        #expect(sniffedBinary.stderr.hasSuffix("module.bin has no `_start` function to run; it exports no functions\n"))
        let sniffedText = try runCLI(["run", try file("module.txt", "(module (func (export \"f\") (result i32) i32.const 7))"), "--invoke", "f"])
        #expect(sniffedText.status == 0 && sniffedText.stdout == "7\n")
    }

    @Test("errors are in the user's words: file:line:column, no Swift debug descriptions")
    func errorWords() throws {
        let unknown = try file("unknown.wat", """
            (module
              (func $main (export "main")
                i32.const 1
                call $nope
                drop))
            """)
        let result = try runCLI(["run", unknown])
        #expect(result.stderr == "error: \(unknown):4:10: unknown function $nope\n")
        let local = try runCLI(["run", try file("local.wat", "(module (func local.get $x drop))")])
        #expect(local.stderr.hasSuffix(":1:24: unknown local $x\n"), "\(local.stderr)")
        let corpus = [unknown, try file("a.wat", "(module (func (resul i32)))"), try file("b.wat", "(module (func $f) (func $f))"),
                      try file("c.wat", "(module (memory 1) (data (i32.const 0) \"\\zz\"))"), try file("d.wat", "(module")]
        for path in corpus {
            let output = try runCLI(["run", path])
            #expect(output.status == 1)
            #expect(output.stderr.hasPrefix("error: \(path)"), "\(output.stderr)")
            for debris in ["Location(", "Message(", "Decl", "Name(value"] {
                #expect(!output.stderr.contains(debris), "\(output.stderr)")
            }
        }
    }

    @Test("a host import with the wrong signature says both signatures")
    func hostSignature() throws {
        let path = try file("print.wat", #"(module (import "host" "print_i32" (func (param i64))) (func (export "f")))"#)
        let result = try runCLI(["run", path, "--invoke", "f"])
        #expect(result.status == 1)
        #expect(result.stderr == "error: host::print_i32 expects (i32) -> (), the module imports it as (i64) -> ()\n")
    }

    @Test("usage and demo errors read `error: ...` too")
    func usageErrors() throws {
        let usage = try runCLI(["run"])
        #expect(usage.status == 64)
        #expect(usage.stderr.hasPrefix("error: "))
        let demo = try runCLI(["demo", "fixtures/does-not-exist.wat"])
        #expect(demo.status == 1)
        #expect(demo.stderr == "error: cannot read fixtures/does-not-exist.wat: No such file or directory\n")
    }

    @Test("option values: a negative number gets the range message, `--` ends options")
    func optionValues() throws {
        let negative = try runCLI(["run", "fixtures/traps/traps.wat", "--invoke", "recurse", "--max-backtrace-frames", "-1", "0"])
        #expect(negative.status == 64)
        #expect(negative.stderr.hasPrefix("error: --max-backtrace-frames must be 0 or more, got -1\n"))
        let stack = try runCLI(["run", "fixtures/traps/traps.wat", "--invoke", "recurse", "--max-wasm-stack", "-4096", "0"])
        #expect(stack.stderr.hasPrefix("error: --max-wasm-stack must be at least 4096 bytes, got -4096\n"))
        let count = try runCLI(["verify", "--count", "-3"])
        #expect(count.stderr.hasPrefix("error: --count must be at least 1"))
        let dashes = try runCLI(["run", "--preload", "lib=fixtures/programs/library.wat", "fixtures/programs/uses-library.wat",
                                 "--invoke", "sum_of_squares", "--", "3", "-4"])
        #expect(dashes.status == 0)
        #expect(dashes.stdout == "-1\n3\n-4\n25\n")
    }

    @Test("run with nothing to run says what it could invoke and fails")
    func nothingToRun() throws {
        let result = try runCLI(["run", "fixtures/programs/factorial.wat"])
        #expect(result.status == 1)
        #expect(result.stderr == "error: fixtures/programs/factorial.wat has no `_start` function to run; give --invoke with one of its exports: fac\n")
    }

    @Test("--max-wasm-stack beyond the thread's stack is an error that says how much there is")
    func stackTooLarge() throws {
        let result = try runCLI(["run", "fixtures/traps/traps.wat", "--invoke", "recurse", "--max-wasm-stack", "1000000000", "0"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("error: --max-wasm-stack 1000000000 is more than this thread's stack can give wasm: at most "))
    }

    @Test("failed writes are errors with the system's reason, never `capture written`")
    func failedWrites() throws {
        let full = try runCLI(["run", "fixtures/traps/traps.wat", "--invoke", "outer", "--capture", "/dev/full"])
        #expect(full.status == 1)
        #expect(full.stderr.hasSuffix("error: cannot write the capture to /dev/full: No space left on device\n"))
        #expect(!full.stderr.contains("capture written"))
        let missing = try runCLI(["run", "fixtures/traps/traps.wat", "--invoke", "outer", "--capture", "/nonexistent/x"])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasSuffix("error: cannot write the capture to /nonexistent/x: No such file or directory\n"))
        let code = try runCLI(["compile", "fixtures/programs/factorial.wat", "--code-out", "/dev/full"])
        #expect(code.status == 1)
        #expect(code.stderr == "error: cannot write the machine code to /dev/full: No space left on device\n")
        let devFull = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let stdout = try runCLI(["run", "fixtures/programs/factorial.wat", "--invoke", "fac", "3"], standardOutput: devFull)
        #expect(stdout.status == 1)
        #expect(stdout.stderr == "error: cannot write to standard output: No space left on device\n")
    }

    @Test("a profile that cannot be written fails the run; a profile of a trapping export is still written")
    func profileWrites() throws {
        for target in ["/dev/full", "/nonexistent/profile.folded", FileManager.default.temporaryDirectory.path] {
            let result = try runCLI(["run", "fixtures/programs/ratio.wat", "--invoke", "main", "--profile", "folded",
                                     "--profile-output", target, "--", "10"])
            #expect(result.status == 1 && result.stderr.contains("cannot write the profile to \(target)"), "\(target): \(result.stderr)")
        }
        let path = try file("trapping.folded", "")
        let trapping = try runCLI(["profile", "fixtures/programs/trap-loop.wat", "--invoke", "oob", "--hz", "10000", "-o", path, "--", "5"])
        #expect(trapping.status == 134 && trapping.stderr.contains("out of bounds memory access"), "\(trapping.stderr)")
        #expect(trapping.stderr.contains("profile: "), "\(trapping.stderr)")
    }

    @Test("a float argument past its type's range is refused, as an integer is; inf and nan are taken")
    func floatArguments() throws {
        let module = try file("floats.wat", #"(module (func (export "f") (param f32) (result f32) local.get 0) (func (export "d") (param f64) (result f64) local.get 0))"#)
        let big = try runCLI(["run", module, "--invoke", "f", "1e40"])
        #expect(big.status == 1 && big.stderr.contains("argument `1e40` is out of the range of f32"), "\(big.stderr)")
        let huge = try runCLI(["run", module, "--invoke", "d", "1e400"])
        #expect(huge.status == 1 && huge.stderr.contains("out of the range of f64"), "\(huge.stderr)")
        #expect(try runCLI(["run", module, "--invoke", "f", "inf"]).stdout == "inf\n")
        #expect(try runCLI(["run", module, "--invoke", "f", "3.5"]).stdout == "3.5\n")
    }

    @Test("--capture-throws writes at most --max-captures files and says how many more there were")
    func captureLimit() throws {
        let directory = try temporaryDirectory("capture-limit")
        defer { try? FileManager.default.removeItem(at: directory) }
        let capture = directory.appendingPathComponent("t.capture").path
        let result = try runCLI(["run", "fixtures/programs/throwloop.wat", "--invoke", "main", "--capture", capture,
                                 "--capture-throws", "--max-captures", "5", "--", "40"])
        #expect(result.status == 0, "\(result.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(files.count == 5, "\(files)")
        #expect(result.stderr.contains("more captures not written (--max-captures 5)"), "\(result.stderr)")
    }

    @Test("dump reads each input once: a pipe, a process substitution, a directory and an endless device")
    func dumpInputs() throws {
        let capture = PackagePaths.fixture("captures/single.capture")
        let piped = try runChild("/bin/sh", ["-c", "cat \"$1\" | \"$0\" dump /dev/stdin", PackagePaths.cli, capture])
        #expect(piped.status == 0 && piped.stdout.contains("activation"), "\(piped.stdout) \(piped.stderr)")
        let substituted = try runChild("/bin/bash", ["-c", "\"$0\" dump <(cat \"$1\")", PackagePaths.cli, capture])
        #expect(substituted.status == 0 && substituted.stdout.contains("activation"), "\(substituted.stderr)")
        let directory = try runCLI(["dump", "fixtures"])
        #expect(directory.status == 1 && directory.stderr.contains("fixtures is a directory, not a file"), "\(directory.stderr)")
        let endless = try runCLI(["dump", "/dev/zero"])
        #expect(endless.status == 1 && endless.stderr.contains("a stream without end"), "\(endless.stderr)")
    }

    @Test("the demo runs from any directory: its module is built in, and is fixtures/demo/nested.wat")
    func demoAnywhere() throws {
        let result = try runCLI(["demo"], directory: try temporaryDirectory("demo"))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasSuffix("main(7) returned 82\n"))
        let fixture = try String(contentsOfFile: PackagePaths.fixture("demo/nested.wat"), encoding: .utf8)
        let help = try runCLI(["demo", "--help"])
        #expect(help.status == 0)
        // The built-in text equals the fixture: running the fixture gives
        // the same output.
        let fromFixture = try runCLI(["demo", PackagePaths.fixture("demo/nested.wat")])
        #expect(fromFixture.stdout == result.stdout)
        #expect(!fixture.isEmpty)
    }

    @Test("trailing bytes after a capture are reported with their offset; the capture still dumps")
    func trailingBytes() throws {
        var bytes = try CaptureFixtures.bytes("single")
        let size = bytes.count
        bytes += [1, 2, 3]
        let path = try file("trailing.capture", bytes)
        let result = try runCLI(["dump", path])
        #expect(result.status == 0)
        #expect(result.stderr == "warning: \(path): 3 bytes after the last section, from byte \(size), were ignored\n")
        #expect(result.stdout.contains("factorial!fac"))
    }
}

@Suite("--format json is one document")
struct JSONOutputTests {
    func parse(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("run: backtraces, prints, a collection and the results, in order, in one document")
    func run() throws {
        let result = try runCLI(["run", "fixtures/programs/refs.wat", "--invoke", "main", "--print-roots", "--format", "json"])
        #expect(result.status == 0)
        let document = try parse(result.stdout)
        #expect(document["schema"] as? String == "wasm-unwind.run")
        let events = try #require(document["events"] as? [[String: Any]])
        #expect(events.map { $0["event"] as? String } == ["gc"])
        #expect((events[0]["stack_roots"] as? [Any])?.count == 4)
        #expect((document["results"] as? [[String: String]]) == [["type": "i32", "value": "2"]])
        #expect(document["trap"] is NSNull)
    }

    @Test("run: backtrace_all's hybrid backtrace and a trap are inside the document")
    func hybridAndTrap() throws {
        let hybrid = try runCLI(["run", "fixtures/programs/hybrid.wat", "--invoke", "outer", "--format", "json"])
        let events = try #require(try parse(hybrid.stdout)["events"] as? [[String: Any]])
        #expect(events.first?["event"] as? String == "hybrid-backtrace")
        let trap = try runCLI(["run", "fixtures/traps/traps.wat", "--invoke", "outer", "--format", "json"])
        #expect(trap.status == 134)
        let report = try #require(try parse(trap.stdout)["trap"] as? [String: Any])
        #expect(report["message"] as? String == "wasm trap: wasm `unreachable` instruction executed")
        let frames = try #require((report["backtrace"] as? [String: Any])?["frames"] as? [[String: Any]])
        #expect(frames.map { $0["function_name"] as? String } == ["inner", "outer"])
    }

    @Test("dump: every file, --roots, --hybrid and --verify in one document, failures included")
    func dump() throws {
        let files = CaptureFixtures.all.map { CaptureFixtures.path($0.name) }
        let result = try runCLI(["dump", "--format", "json", "--roots", "--hybrid", "--verify"] + files
                                + ["fixtures/does-not-exist.capture"])
        #expect(result.status == 1)
        let document = try parse(result.stdout)
        #expect(document["schema"] as? String == "wasm-unwind.dump")
        let entries = try #require(document["files"] as? [[String: Any]])
        #expect(entries.count == files.count + 1)
        for entry in entries.prefix(files.count) {
            #expect((entry["verification"] as? [String: Any])?["match"] as? Bool == true)
            #expect(entry["roots"] is [Any])
        }
        #expect(entries.contains { $0["hybrid"] is [Any] })
        #expect(entries.last?["error"] as? String == "cannot read fixtures/does-not-exist.capture: No such file or directory")
    }
}
