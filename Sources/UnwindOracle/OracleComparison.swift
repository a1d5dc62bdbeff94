import WasmUnwind

/// What a code address is, in the JIT's code.
public enum JITCodeKind: Hashable, Sendable {
    case wasmFunction
    case entryTrampoline
    case exitTrampoline
}

/// libunwind's frames against the frame-pointer walk, frame for frame.
///
/// The rule: libunwind's frames that lie in JIT code must be, in order,
/// for each activation of the walk (newest first) — the exit trampoline
/// (unless the activation is the trapping one), the activation's wasm
/// frames with exactly the walk's pcs, then the entry trampoline. So every
/// wasm frame matches pc for pc and the trampolines sit exactly at the
/// activation boundaries.
public struct OracleComparison: Sendable {
    /// One position in the expected JIT frame sequence.
    public struct Row: Hashable, Sendable {
        public var index: Int
        public var expectedKind: JITCodeKind?
        public var expectedPC: UInt?
        public var libunwindKind: JITCodeKind?
        public var libunwindPC: UInt?
        public var matches: Bool
    }

    /// Every position, matching or not.
    public private(set) var rows: [Row] = []
    /// The wasm frames compared (those of the walk).
    public private(set) var wasmFramesCompared = 0

    /// Rows that do not match.
    public var mismatches: [Row] { rows.filter { !$0.matches } }
    public var isMatch: Bool { mismatches.isEmpty }

    /// Compares `libunwind` (all frames, newest first) with `walk` (the
    /// walker's wasm frames). `kind` says which addresses are JIT code.
    /// `trapped` says the newest activation starts at a trapping pc (no exit
    /// trampoline below it); `exitTrampolines` false says wasm called the
    /// host directly (inline exit recording: no exit trampoline anywhere).
    public init(libunwind: [LibunwindFrame], walk: [Frame], trapped: Bool, exitTrampolines: Bool = true,
                kind: (UInt) -> JITCodeKind?) {
        var expected: [(JITCodeKind, UInt?)] = []
        var activation = -1
        for frame in walk {
            if frame.activation != activation {
                if activation >= 0 { expected.append((.entryTrampoline, nil)) }
                activation = frame.activation
                if exitTrampolines && !(trapped && activation == 0) { expected.append((.exitTrampoline, nil)) }
            }
            expected.append((.wasmFunction, frame.address.rawValue))
        }
        if activation >= 0 { expected.append((.entryTrampoline, nil)) }
        wasmFramesCompared = walk.count

        let seen: [(JITCodeKind, UInt)] = libunwind.enumerated().compactMap { index, frame in
            // A return address is classified by the call instruction it
            // follows; an interrupted frame (the first, at a trap) by its pc.
            let lookup = trapped && index == 0 ? frame.ip : frame.ip &- 1
            return kind(lookup).map { ($0, frame.ip) }
        }
        for index in 0..<max(expected.count, seen.count) {
            let want = index < expected.count ? expected[index] : nil
            let got = index < seen.count ? seen[index] : nil
            var matches = want?.0 == got?.0
            if matches, let pc = want?.1 { matches = pc == got?.1 }
            rows.append(Row(index: index, expectedKind: want?.0, expectedPC: want?.1,
                            libunwindKind: got?.0, libunwindPC: got?.1, matches: matches))
        }
    }

    /// A frame-by-frame report: index, both pcs, and what each pc is.
    public func report(symbolicate: (UInt) -> String) -> String {
        var lines = ["  #  walker (expected)                          libunwind"]
        for row in rows {
            func describe(_ kind: JITCodeKind?, _ pc: UInt?) -> String {
                guard let kind else { return "-" }
                switch kind {
                case .entryTrampoline: return "entry trampoline" + (pc.map { " \(hex($0))" } ?? "")
                case .exitTrampoline: return "exit trampoline" + (pc.map { " \(hex($0))" } ?? "")
                case .wasmFunction: return pc.map { "\(hex($0)) \(symbolicate($0))" } ?? "wasm"
                }
            }
            let left = describe(row.expectedKind, row.expectedPC)
            let right = describe(row.libunwindKind, row.libunwindPC)
            let number = String(row.index)
            lines.append((row.matches ? "   " : "!! ") + String(repeating: " ", count: max(0, 3 - number.count)) + number + "  "
                         + left.padding(toLength: 42, withPad: " ", startingAt: 0) + " " + right)
        }
        return lines.joined(separator: "\n")
    }
}


import Foundation
