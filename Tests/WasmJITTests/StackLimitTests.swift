import Foundation
import Testing

/// A wasm frame of any size stops at the stack limit before it is
/// allocated: the prologue compares the stack pointer the frame would
/// leave with the limit, so the trap path (the runtime's trap entry, the
/// walk, the snapshot) always runs above the limit, inside the host
/// reserve. Each sweep runs in a child (`trap-probe huge-frames`): a frame
/// allocated past the limit crashes the process instead of trapping.
@Suite("Frames larger than the host reserve")
struct StackLimitTests {
    /// Frames of 320 KiB (more than the 128 KiB host reserve), 80 KiB and
    /// 16 KiB.
    static let localCounts = [40_000, 10_000, 2_000]

    /// `PLACE: wasm trap: call stack exhausted (N times)` for each place:
    /// every entry position trapped, none returned or crashed.
    static func expectOnlyStackExhaustion(_ result: (status: Int32, signal: Int32?, stdout: String, stderr: String),
                                          places: [String]) {
        #expect(result.status == 0 && result.signal == nil,
                "exit \(result.status), signal \(result.signal.map(String.init) ?? "none"), stderr: \(result.stderr.prefix(600))")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == places.count, "\(result.stdout)")
        for (line, place) in zip(lines, places) {
            #expect(line.hasPrefix("\(place): wasm trap: call stack exhausted (") && line.hasSuffix(" times)")
                    && !line.contains(","), "\(line)")
        }
    }

    @Test("on threads with small stacks, every frame size and entry position ends in `call stack exhausted`",
          arguments: localCounts)
    func smallThreadStacks(locals: Int) throws {
        let sizes = [256, 300, 384, 512, 768, 1024].map(String.init)
        let result = try runChild(PackagePaths.executable("trap-probe"), ["huge-frames", String(locals)] + sizes)
        Self.expectOnlyStackExhaustion(result, places: sizes)
    }

    @Test("on the main thread with small stacks (ulimit -s), at every entry position", arguments: [400, 648, 1000])
    func mainThreadStack(kilobytes: Int) throws {
        let probe = PackagePaths.executable("trap-probe")
        let result = try runChild("/bin/sh", ["-c", "ulimit -s \(kilobytes) && exec \"$0\" huge-frames 40000 main", probe])
        Self.expectOnlyStackExhaustion(result, places: ["main"])
    }
}
