import ArgumentParser
import Foundation
import StackCapture
import UnwindOracle
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
            still dumped. With --format json the dumps of all files are one JSON \
            document.
            """)

    @Argument(help: "Capture files.")
    var files: [String]

    @Option(name: .long, help: "text (Wasmtime's layout) or json (one document for all files).")
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
        let formatter = format.formatter
        var entries: [DumpReport.Entry] = []
        var failed = false
        for (index, file) in files.enumerated() {
            let (entry, sound) = dump(file)
            if !sound { failed = true }
            if formatter.rendersEventsAsTheyHappen {
                // Each file's dump is written (and flushed) before the next
                // file is read: nothing already read is lost.
                if index > 0 { output() }
                if case .failure = entry {} else { output(formatter.render(DumpReport(entries: [entry]))) }
                try flushStandardOutput()
            } else {
                entries.append(entry)
            }
        }
        if !formatter.rendersEventsAsTheyHappen { output(formatter.render(DumpReport(entries: entries))) }
        if failed { throw ExitCode(1) }
    }

    /// One file's dump, and whether it was sound. Problems are also
    /// reported on standard error as they are found.
    func dump(_ file: String) -> (DumpReport.Entry, Bool) {
        func failure(_ message: String) -> (DumpReport.Entry, Bool) {
            printError("\(file): \(message)")
            return (.failure(file: file, message: message), false)
        }
        let bytes: [UInt8]
        do { bytes = try readFile(file) } catch { return failure("\(error)") }
        var warnings: [String] = []
        let stack: CapturedStack
        do {
            stack = try CapturedStack(CaptureFile(parsing: bytes, warnings: &warnings))
        } catch {
            return failure("not a valid capture: \(error)")
        }
        for warning in warnings { printError("warning: \(file): \(warning)") }
        let (dump, sound) = stack.dump(file: file, roots: roots, hybrid: hybrid, verify: verify, warnings: warnings)
        if let error = dump.backtrace.error {
            printError("\(file): the captured frame chain is broken after \(dump.backtrace.frames.count) frames: \(error) [\(error.rule)]")
        }
        if let error = dump.hybridError { printError("\(file): \(error)") }
        return (.dump(dump), sound)
    }
}
