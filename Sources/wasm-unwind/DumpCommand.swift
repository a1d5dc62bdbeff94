import ArgumentParser
import Foundation
import JITCapture
import StackCapture
import WasmUnwind

struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the backtraces of captured stacks.",
        discussion: """
            Reads each FILE (made by `wasm-unwind run --capture`), walks its captured \
            stack with the same walker as a live stack, and prints the wasm frames in \
            Wasmtime's layout with the activation boundaries marked. --roots adds the GC \
            roots found through the captured stack maps; --hybrid prints every frame of \
            the stack where the capture kept the host frames (taken at \
            host.backtrace_all); --verify unwinds the capture again offline with \
            libunwind — registers from the capture, memory from the captured bytes, CFI \
            from the captured tables — and compares frame for frame.

            A file that cannot be read, a corrupt capture, a broken frame chain or a \
            mismatch is reported (file, section, byte, what was expected; the frames \
            found before a break) and makes the exit status 1; the other files are \
            still dumped.
            """)

    @Argument(help: "Capture files.")
    var files: [String]

    @Option(name: .long, help: "text (Wasmtime's layout) or json.")
    var format: OutputFormat = .text

    @Flag(name: .long, help: "Also print the GC roots of the captured frames.")
    var roots = false

    @Flag(name: .long, help: "Print every frame of the stack, host and wasm, when the capture has them.")
    var hybrid = false

    @Flag(name: .long, help: "Unwind each capture offline with libunwind and compare with the walk.")
    var verify = false

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one capture file") }
    }

    func run() throws {
        var failed = false
        for (index, file) in files.enumerated() {
            if index > 0 && format == .text { print() }
            if !dump(file) { failed = true }
        }
        if failed { throw ExitCode(1) }
    }

    /// Dumps one file; returns whether it was sound.
    func dump(_ file: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: file) else {
            printError("\(file): cannot read the file")
            return false
        }
        let stack: CapturedStack
        do {
            stack = try CapturedStack(CaptureFile(parsing: [UInt8](data)))
        } catch {
            printError("\(file): not a valid capture: \(error)")
            return false
        }
        var sound = true
        let backtrace = stack.backtrace()
        if let error = backtrace.error {
            printError("\(file): the captured frame chain is broken after \(backtrace.frames.count) frames: \(error) [\(error.rule)]")
            sound = false
        }
        var foundRoots: [GCRoot]?
        var rootError: RootEnumerationError?
        if roots {
            do { foundRoots = try stack.roots(of: backtrace) } catch {
                rootError = error
                sound = false
            }
        }
        switch format {
        case .text:
            print("\(file): \(stack.summary)")
            print(stack.text(roots: foundRoots, rootError: rootError).split(separator: "\n", omittingEmptySubsequences: false)
                .dropFirst().joined(separator: "\n"))
        case .json:
            print(stack.json(file: file, roots: foundRoots, rootError: rootError).rendered())
        }
        if hybrid {
            if let frames = stack.capture.hostFrames {
                if !printHybrid(frames, stack: stack, backtrace: backtrace) { sound = false }
            } else {
                printError("\(file): no host frames in this capture (capture at host.backtrace_all to keep them)")
            }
        }
        if verify {
            let verification = CaptureVerification(stack)
            if verification.isMatch {
                print("verify: libunwind agrees on all \(verification.framesCompared) wasm frames in \(verification.activations.count) activation\(verification.activations.count == 1 ? "" : "s")")
            } else {
                sound = false
                print("verify: libunwind disagrees with the walk")
                for (index, comparison) in verification.activations.enumerated() where !comparison.isMatch {
                    print("activation \(index):")
                    print(comparison.report { pc in
                        stack.registry.symbol(for: .returnAddress(pc)).map { symbol in
                            "\(symbol.moduleName ?? "<unknown>")!\(symbol.functionName ?? "?")"
                        } ?? "<not wasm>"
                    })
                }
            }
        }
        return sound
    }

    /// The captured host frames with the walk's wasm frames in their places.
    func printHybrid(_ frames: [CaptureFile.HostFrame], stack: CapturedStack, backtrace: Backtrace) -> Bool {
        var wasm = backtrace.frames.makeIterator()
        var lines = ["hybrid backtrace:"]
        var sound = true
        for (index, frame) in frames.enumerated() {
            let number = String(index)
            let prefix = "  " + String(repeating: " ", count: max(0, 3 - number.count)) + number + ": 0x" + String(frame.pc, radix: 16)
            switch frame.kind {
            case .host:
                lines.append(prefix + "  host   " + (frame.name.isEmpty ? "<unknown>" : "\(frame.name) + \(frame.offset)"))
            case .entryTrampoline:
                lines.append(prefix + "  [entry trampoline]")
            case .exitTrampoline:
                lines.append(prefix + "  [exit trampoline]")
            case .wasm:
                guard let ours = wasm.next(), ours.address.rawValue == frame.pc else {
                    lines.append(prefix + "  wasm   (the walk has no frame here)")
                    sound = false
                    continue
                }
                let line = SymbolicatedBacktrace.line(index: 0, frame: stack.registry.symbolicate(ours))
                lines.append(prefix + "  wasm   " + line.dropFirst("    0:".count).drop { $0 == " " })
            }
        }
        print(lines.joined(separator: "\n"))
        return sound
    }
}
