import WasmJIT

/// A program of two modules: `lib`, which defines a funcref table, a memory
/// and functions, and `main`, which imports them and the host.
public struct LinkedProgram: Sendable {
    public let seed: UInt64
    /// WebAssembly text of the two modules; `lib` is instantiated first and
    /// its exports are `main`'s imports from module `lib`.
    public let lib: String
    public let main: String
    /// `main`'s export to call, with one i32 argument each time.
    public let entry: String
    public let arguments: [Int32]

    /// Both modules, for a replay.
    public var text: String { ";; lib\n" + lib + "\n;; main\n" + main }
}

/// Generates the programs the reference runtime and Wasmtime (and
/// libunwind) are compared on for the instructions real compilers emit:
/// calls through a table shared by two modules (`call_indirect` to a
/// function of the same module, of the other instance, or to a host
/// function placed in the table), `br_table` dispatch, multi-value
/// returns, tail calls, memory growth and bulk memory, host re-entry, and
/// traps at random depths — `unreachable`, division by zero, an
/// out-of-bounds load, an indirect call through a null, out-of-range or
/// mistyped element, float-to-int overflow.
///
/// Every function takes a depth `d` and, while `d > 0`, picks by `d % 4`
/// (a `br_table`) one of four calls with `d - 1`; at `d == 0` it returns a
/// constant or traps. So each argument follows a different path, and a
/// trap happens at a depth the argument decides. `host.check` lets the
/// libunwind comparison stop at random points; `host.reenter` calls
/// `main.entry` again (a new activation).
public struct LinkedProgramGenerator {
    private var random: SplitMix64
    private let seed: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        random = SplitMix64(seed: seed &* 0x2545_F491_4F6C_DD1D &+ 7)
    }

    /// What a function does when its depth reaches zero.
    enum Terminal: CaseIterable {
        case value, unreachable, divideByZero, outOfBoundsLoad, nullElement, tableOutOfBounds, mistyped, badConversion
    }

    /// A call a function can make with the decremented depth.
    enum Step {
        case direct(Int)          // a function of this module
        case indirect(slot: Int)  // through the shared table
        case imported(Int)        // main only: a lib function by import
        case reenter              // main only: host.reenter
        case tail(Int)            // return_call of a function of this module
        case pair(Int)            // a call of the multi-value sibling
    }

    static let tableSize = 8

    public mutating func generate() -> LinkedProgram {
        let libCount = random.number(2...5)
        let mainCount = random.number(2...5)
        // Table slots: lib functions (0..<libCount), main functions
        // (libCount...), the host function, or null.
        var slots: [String?] = []
        for _ in 0..<Self.tableSize {
            switch random.number(0...9) {
            case 0...4: slots.append("lib:\(random.number(0...(libCount - 1)))")
            case 5...7: slots.append("main:\(random.number(0...(mainCount - 1)))")
            case 8: slots.append("host")
            default: slots.append(nil)
            }
        }
        let lib = module(name: "lib", count: libCount, otherCount: 0, slots: slots)
        let main = module(name: "main", count: mainCount, otherCount: libCount, slots: slots)
        let arguments = (0..<random.number(3...6)).map { _ in Int32(random.number(0...14)) }
        return LinkedProgram(seed: seed, lib: lib, main: main, entry: "entry", arguments: arguments)
    }

    private mutating func module(name: String, count: Int, otherCount: Int, slots: [String?]) -> String {
        let isMain = name == "main"
        var text = "(module $\(name)\n"
        text += "  (type $t (func (param i32) (result i32)))\n"
        text += "  (type $pair (func (param i32) (result i32 i32)))\n"
        text += "  (type $wrong (func (param i64) (result i64)))\n"
        if isMain {
            text += "  (import \"host\" \"reenter\" (func $reenter (type $t)))\n"
            text += "  (import \"host\" \"check\" (func $check))\n"
            for index in 0..<otherCount {
                text += "  (import \"lib\" \"l\(index)\" (func $l\(index) (type $t)))\n"
            }
            text += "  (import \"lib\" \"table\" (table $table \(Self.tableSize) funcref))\n"
            text += "  (import \"lib\" \"memory\" (memory 1))\n"
        } else {
            text += "  (import \"host\" \"slot\" (func $host_slot (type $t)))\n"
            text += "  (table $table (export \"table\") \(Self.tableSize) funcref)\n"
            text += "  (memory (export \"memory\") 1)\n"
            text += "  (data (i32.const 16) \"linked\")\n"
        }
        text += "  (global $sink (mut i32) (i32.const 0))\n"
        let prefix = isMain ? "m" : "l"
        for index in 0..<count {
            text += function("\(prefix)\(index)", index: index, count: count, isMain: isMain, otherCount: otherCount)
            text += pairFunction("\(prefix)\(index)_pair", target: "\(prefix)\(index)")
        }
        // lib fills the table's lib and host slots; main its own slots.
        var elements: [(Int, String)] = []
        for (slot, entry) in slots.enumerated() {
            guard let entry else { continue }
            if isMain, entry.hasPrefix("main:") { elements.append((slot, "$m" + entry.dropFirst(5))) }
            if !isMain, entry.hasPrefix("lib:") { elements.append((slot, "$l" + entry.dropFirst(4))) }
            if !isMain, entry == "host" { elements.append((slot, "$host_slot")) }
        }
        for (slot, function) in elements {
            text += "  (elem (table $table) (i32.const \(slot)) func \(function))\n"
        }
        if isMain {
            text += "  (func $entry (export \"entry\") (param $d i32) (result i32)\n"
            text += "    (call $check)\n"
            text += "    (call $m0 (local.get $d)))\n"
        } else {
            for index in 0..<count { text += "  (export \"l\(index)\" (func $l\(index)))\n" }
        }
        return text + ")\n"
    }

    /// `(param i32) (result i32 i32)`: the function's value and its double
    /// (multi-value through a call).
    private func pairFunction(_ name: String, target: String) -> String {
        """
          (func $\(name) (param $d i32) (result i32 i32)
            (local $v i32)
            (local.set $v (call $\(target) (local.get $d)))
            (local.get $v) (i32.shl (local.get $v) (i32.const 1)))

        """
    }

    private mutating func function(_ name: String, index: Int, count: Int, isMain: Bool, otherCount: Int) -> String {
        let terminal = random.chance(45) ? Terminal.value : Terminal.allCases.randomElement(using: &random)!
        var steps: [Step] = []
        for _ in 0..<4 { steps.append(step(index: index, count: count, isMain: isMain, otherCount: otherCount)) }
        let prefix = isMain ? "m" : "l"
        var text = "  (func $\(name) (param $d i32) (result i32)\n"
        text += "    (local $scratch i32)\n"
        text += "    (if (i32.eqz (local.get $d)) (then\n"
        text += terminalCode(terminal).map { "      " + $0 + "\n" }.joined()
        text += "    ))\n"
        if isMain && random.chance(30) { text += "    (call $check)\n" }
        if random.chance(25) {
            // Bulk memory on the shared memory, and growth.
            text += "    (memory.fill (i32.const \(random.number(64...4000))) (local.get $d) (i32.const \(random.number(1...64))))\n"
            text += "    (memory.copy (i32.const \(random.number(4096...8000))) (i32.const 16) (i32.const 6))\n"
        }
        if random.chance(10) {
            text += "    (drop (memory.grow (i32.const 0)))\n"
        }
        // (block $c3 (block $c2 (block $c1 (block $c0 (br_table ...))
        //   case 0) case 1) case 2) case 3: each case returns.
        text += "    (block $c3 (block $c2 (block $c1 (block $c0\n"
        text += "      (br_table $c0 $c1 $c2 $c3 (i32.rem_u (local.get $d) (i32.const 4))))\n"
        for (position, step) in steps.enumerated() {
            let call = callCode(step, prefix: prefix)
            let line: String
            if case .tail = step {
                line = call
            } else {
                let combine = ["i32.add", "i32.xor", "i32.sub", "i32.mul"].randomElement(using: &random)!
                line = "(return (\(combine) (i32.const \(random.number(1...1000))) \(call)))"
            }
            text += "      " + line + (position < 3 ? ")" : "") + "\n"
        }
        text += "  )\n"
        return text
    }

    private mutating func step(index: Int, count: Int, isMain: Bool, otherCount: Int) -> Step {
        switch random.number(0...9) {
        case 0...2: return .indirect(slot: random.number(0...(Self.tableSize - 1)))
        case 3...4: return .direct(random.number(0...(count - 1)))
        case 5: return .tail(random.number(0...(count - 1)))
        case 6: return .pair(random.number(0...(count - 1)))
        case 7 where isMain && otherCount > 0: return .imported(random.number(0...(otherCount - 1)))
        case 8 where isMain && random.chance(50): return .reenter
        default: return .direct(random.number(0...(count - 1)))
        }
    }

    private func callCode(_ step: Step, prefix: String) -> String {
        let next = "(i32.sub (local.get $d) (i32.const 1))"
        switch step {
        case .direct(let target): return "(call $\(prefix)\(target) \(next))"
        case .indirect(let slot): return "(call_indirect $table (type $t) \(next) (i32.const \(slot)))"
        case .imported(let target): return "(call $l\(target) \(next))"
        case .reenter: return "(call $reenter \(next))"
        case .tail(let target): return "(return_call $\(prefix)\(target) \(next))"
        case .pair(let target): return "(i32.add (call $\(prefix)\(target)_pair \(next)))"
        }
    }

    /// The code of a terminal: a value, or a trap. A trap is never alone on
    /// its path (the store to `$sink` before it), so an optimizing compiler
    /// cannot turn the branch into a conditional trap at the branch's offset.
    private mutating func terminalCode(_ terminal: Terminal) -> [String] {
        let store = "(global.set $sink (i32.const \(random.number(1...99))))"
        switch terminal {
        case .value:
            return ["(return (i32.const \(random.number(1...1000))))"]
        case .unreachable:
            return [store, "(unreachable)"]
        case .divideByZero:
            return [store, "(return (i32.div_u (i32.const 7) (local.get $d)))"]
        case .outOfBoundsLoad:
            return [store, "(return (i32.load offset=\(random.number(65_530...70_000)) (local.get $d)))"]
        case .nullElement, .tableOutOfBounds, .mistyped:
            // Null: a slot past every element segment is grown in fresh.
            let slot = terminal == .tableOutOfBounds ? Self.tableSize + random.number(0...3) : random.number(0...(Self.tableSize - 1))
            if terminal == .mistyped {
                return [store, "(return (i32.wrap_i64 (call_indirect $table (type $wrong) (i64.const 1) (i32.const \(slot)))))"]
            }
            if terminal == .nullElement {
                return [store, "(local.set $scratch (table.grow $table (ref.null func) (i32.const 1)))",
                        "(return (call_indirect $table (type $t) (i32.const 0) (local.get $scratch)))"]
            }
            return [store, "(return (call_indirect $table (type $t) (i32.const 0) (i32.const \(slot))))"]
        case .badConversion:
            return [store, "(return (i32.trunc_f64_s (f64.const \(["3e9", "-3e10", "nan", "inf"].randomElement(using: &random)!))))"]
        }
    }
}
