import WasmDWARF

/// Which crashes are the same crash: an event's signature is how it ended
/// (the trap's kind, without the numbers a message may carry) and the
/// names of its crashing thread's newest frames that are the program's own
/// (runtime code — trampolines, stubs — skipped; names, not offsets, so a
/// rebuild that moves code keeps its groups). Versioned: a rule change
/// makes new signatures under a new version instead of silently splitting
/// the groups made under the old one.
public struct Grouping: Hashable, Sendable {
    /// The rule's version, stored with each group.
    public static let version = 1
    /// How many of the program's newest frames make the signature.
    public var depth: Int

    public init(depth: Int = 5) { self.depth = max(1, depth) }

    /// The parts of an event's signature, in order.
    public func parts(of event: CrashEvent) -> [String] {
        let frames = event.frames.filter(\.isProgram).prefix(depth).map { frame in
            (frame.module.map { $0 + "!" } ?? "") + frame.function
        }
        return ["v\(Self.version)", "depth \(depth)", Self.kindOfEnd(event.reason)] + frames
    }

    /// The signature: a hash of the parts.
    public func signature(of event: CrashEvent) -> String {
        let text = parts(of: event).joined(separator: "\n")
        return ContentHash.sha256(Array(text.utf8)).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }

    /// A group's title: how it ended, at which function.
    public func title(of event: CrashEvent) -> String {
        let top = event.frames.first(where: \.isProgram).map { ($0.module.map { $0 + "!" } ?? "") + $0.function } ?? "no wasm frame"
        return "\(Self.kindOfEnd(event.reason)) in \(top)"
    }

    /// How an event ended, without the values in it: digits and hex
    /// numbers become `N` (`out of bounds memory access at 0x1234` and
    /// `... at 0x5678` are one kind).
    public static func kindOfEnd(_ reason: String) -> String {
        var result = ""
        var inNumber = false
        var index = reason.startIndex
        while index < reason.endIndex {
            let character = reason[index]
            if character.isNumber {
                if !inNumber { result.append("N") }
                inNumber = true
                // 0x...: the hex digits too.
                let next = reason.index(after: index)
                if character == "0", next < reason.endIndex, reason[next] == "x" {
                    index = reason.index(after: next)
                    while index < reason.endIndex, reason[index].isHexDigit { index = reason.index(after: index) }
                    continue
                }
            } else {
                inNumber = false
                result.append(character)
            }
            index = reason.index(after: index)
        }
        return result
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
