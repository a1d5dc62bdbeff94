import Testing

/// The `wasm-unwind` executable, run as a user runs it.
@Suite("wasm-unwind run and demo")
struct RunCommandTests {
    @Test("run prints the backtrace at each host.backtrace and the results one per line")
    func factorial() throws {
        let result = try runCLI(["run", "fixtures/programs/factorial.wat", "--invoke", "fac", "3"])
        #expect(result.status == 0)
        // wasm-objdump -d: 00003e call 0 <backtrace>, 00004a call 1 <fac>.
        #expect(result.stdout == """
            wasm backtrace:
                0:     0x3e - factorial!fac
                1:     0x4a - factorial!fac
                2:     0x4a - factorial!fac
                3:     0x4a - factorial!fac
            6

            """)
    }

    @Test("--preload links another module's exports; negative arguments are arguments")
    func preload() throws {
        let result = try runCLI(["run", "--preload", "lib=fixtures/programs/library.wat",
                                 "fixtures/programs/uses-library.wat", "--invoke", "sum_of_squares", "3", "-4"])
        #expect(result.status == 0)
        #expect(result.stdout == "-1\n3\n-4\n25\n")
    }

    @Test("errors name the problem and exit with status 1 (64 for usage)")
    func errors() throws {
        let missing = try runCLI(["run", "fixtures/does-not-exist.wat"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "error: cannot read fixtures/does-not-exist.wat: No such file or directory\n")

        let noExport = try runCLI(["run", "fixtures/programs/factorial.wat", "--invoke", "nope"])
        #expect(noExport.status == 1)
        #expect(noExport.stderr == "error: fixtures/programs/factorial.wat has no exported function `nope`; exports: fac\n")

        let badArgument = try runCLI(["run", "fixtures/programs/factorial.wat", "--invoke", "fac", "x"])
        #expect(badArgument.status == 1)
        #expect(badArgument.stderr == "error: argument `x` is not a valid i64\n")

        let wrongCount = try runCLI(["run", "fixtures/programs/factorial.wat", "--invoke", "fac"])
        #expect(wrongCount.status == 1)
        #expect(wrongCount.stderr == "error: `fac` takes 1 argument (i64), got 0\n")

        let usage = try runCLI(["run", "--preload", "nameonly", "fixtures/programs/factorial.wat"])
        #expect(usage.status == 64)
        #expect(usage.stderr.contains("--preload expects NAME=FILE, got `nameonly`"))
    }

    @Test("the demo shows three activations and says what they are")
    func demo() throws {
        let result = try runCLI(["demo"])
        #expect(result.status == 0)
        // wasm-objdump -d fixtures/demo/nested.wasm: calls at 0xa0 (leaf), 0x9b
        // (level3), 0x94 (middle), 0x8a (level2), 0x83 (helper), 0x79 (main).
        #expect(result.stdout.contains("""
            wasm backtrace:
                0:     0xa0 - demo!leaf
                1:     0x9b - demo!level3
                2:     0x94 - demo!middle
                3:     0x8a - demo!level2
                4:     0x83 - demo!helper
                5:     0x79 - demo!main
            """))
        #expect(result.stdout.hasPrefix("Three activations:"))
        #expect(result.stdout.hasSuffix("main(7) returned 82\n"))
    }
}

@Suite("wasm-unwind run on traps")
struct RunTrapCommandTests {
    @Test("a trap prints Wasmtime's display on standard error and exits with 134")
    func trap() throws {
        let result = try runCLI(["run", "fixtures/traps/traps.wat", "--invoke", "outer"])
        #expect(result.status == 134)
        #expect(result.stdout == "")
        #expect(result.stderr == """
            error while executing at wasm backtrace:
                0:     0xab - traps!inner
                1:     0xa4 - traps!outer
            wasm trap: wasm `unreachable` instruction executed

            """)
    }

    @Test("host.trap fails with its own message")
    func hostTrap() throws {
        let result = try runCLI(["run", "fixtures/traps/traps.wat", "--invoke", "fail"])
        #expect(result.status == 134)
        #expect(result.stderr == """
            error while executing at wasm backtrace:
                0:     0x9d - traps!fail
            host.trap called with 7

            """)
    }

    @Test("--max-backtrace-frames truncates a stack overflow's trace")
    func truncated() throws {
        let result = try runCLI(["run", "fixtures/traps/traps.wat", "--invoke", "recurse", "0", "--max-backtrace-frames", "3"])
        #expect(result.status == 134)
        // The newest frame trapped in the prologue: no module offset.
        let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 7)
        #expect(Array(lines.prefix(4)) == [
            "error while executing at wasm backtrace:",
            "    0: traps!recurse",
            "    1:     0x96 - traps!recurse",
            "    2:     0x96 - traps!recurse",
        ])
        #expect(lines[4].hasPrefix("       ... (backtrace truncated after 3 frames; ") && lines[4].hasSuffix(" more not shown)"))
        #expect(lines[5] == "wasm trap: call stack exhausted")
    }

    @Test("a trap in the start function is reported the same way")
    func startFunction() throws {
        let result = try runCLI(["run", "fixtures/traps/start-traps.wat"])
        #expect(result.status == 134)
        // wasm-objdump -d: 00001b call 1 <check>, 000024 i32.div_u (in check).
        #expect(result.stderr == """
            error while executing at wasm backtrace:
                0:     0x24 - boot!check
                1:     0x1b - boot!init
            wasm trap: integer divide by zero

            """)
    }
}

@Suite("wasm-unwind run with references")
struct RunReferencesCommandTests {
    @Test("--print-roots lists each root at host.gc: frame, slot and object")
    func printRoots() throws {
        let result = try runCLI(["run", "fixtures/programs/refs.wat", "--invoke", "main", "--print-roots"])
        #expect(result.status == 0)
        // wasm-objdump -d: leaf calls gc at 0x65, middle calls leaf at 0x76.
        // Object 3 was dropped before the collection; objects 1 and 2 are in frames.
        #expect(result.stdout == """
            gc: 4 roots in wasm frames, 0 held by the host; 1 objects freed, 2 alive
                0:     0x65 - refs!leaf    fp-16 = 0x2 (object 1)
                1:     0x76 - refs!middle    fp-16 = 0x2 (object 1)
                1:     0x76 - refs!middle    fp-24 = 0x3 (object 2)
                1:     0x76 - refs!middle    fp-40 = 0x3 (object 2)
            2

            """)
    }

    @Test("a hybrid backtrace from the command line shows trampolines at the activation boundaries")
    func hybrid() throws {
        let result = try runCLI(["run", "fixtures/programs/hybrid.wat", "--invoke", "outer"])
        #expect(result.status == 0)
        let jit = result.stdout.split(separator: "\n").filter { $0.contains("trampoline") || $0.contains("wasm  ") }
            .map { $0.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)[2].drop { $0 == " " } }
        #expect(jit == ["[exit trampoline]", "wasm   0x5a - hybrid!inner", "[entry trampoline]",
                        "[exit trampoline]", "wasm   0x55 - hybrid!outer", "[entry trampoline]"])
        #expect(result.stdout.contains("host   wasm_unwind.RunCommand.run() throws -> () + "))
    }
}
