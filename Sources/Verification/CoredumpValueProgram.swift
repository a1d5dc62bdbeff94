import WasmCoredumpFormat
import WasmJIT

/// Programs whose every local and operand-stack value at a trap is known
/// to the generator, for checking coredumps value by value: a chain of
/// functions, each setting its locals to constants, pushing a few
/// constants, then calling the next with constant arguments (up to 8: some
/// passed on the stack); the last pushes its own and traps (`unreachable`,
/// a division by zero, a load outside memory). Values of every kind,
/// with NaN payloads, -0.0 and infinities among the floats.
public struct CoredumpValueProgram: Sendable {
    public var seed: UInt64
    public var text: String
    /// What the coredump's frames must say, newest first: function index,
    /// locals, stack (bottom first).
    public var expected: [(function: UInt32, locals: [WasmCoredump.Value], stack: [WasmCoredump.Value])]
    /// The arguments the host calls the first function with.
    public var arguments: [Value]
    public var trap: String

    public init(seed: UInt64) {
        var random = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ 1)
        self.seed = seed
        let kinds: [ValueKind] = [.i32, .i64, .f32, .f64]
        let depth = 1 + Int(random.next() % 6)
        struct Function {
            var parameters: [ValueKind]
            var locals: [ValueKind]
        }
        let functions = (0..<depth).map { _ in
            Function(parameters: (0..<Int(random.next() % 9)).map { _ in kinds[Int(random.next() % 4)] },
                     locals: (0..<Int(random.next() % 5)).map { _ in kinds[Int(random.next() % 4)] })
        }
        func value(_ kind: ValueKind) -> WasmCoredump.Value {
            let choice = random.next() % 8
            switch kind {
            case .i32: return .i32(Int32(truncatingIfNeeded: choice == 0 ? 0 : random.next()))
            case .i64: return .i64(Int64(bitPattern: choice == 0 ? UInt64(bitPattern: -1) : random.next()))
            case .f32:
                let special: [UInt32] = [0x8000_0000, 0x7FA0_0001, 0xFFC0_1234, 0x7F80_0000, 0x3FC0_0000]
                return .f32(choice < 3 ? special[Int(random.next() % 5)] : UInt32(truncatingIfNeeded: random.next()))
            case .f64:
                let special: [UInt64] = [0x8000_0000_0000_0000, 0x7FF4_0000_0000_0001, 0xFFF8_0000_0000_BEEF, 0xFFF0_0000_0000_0000]
                return .f64(choice < 3 ? special[Int(random.next() % 4)] : random.next())
            default: return .missing
            }
        }
        /// A constant of exactly these bits: floats through their integer.
        func constant(_ value: WasmCoredump.Value) -> String {
            switch value {
            case .i32(let v): return "(i32.const \(v))"
            case .i64(let v): return "(i64.const \(v))"
            case .f32(let bits): return "(f32.reinterpret_i32 (i32.const \(Int32(bitPattern: bits))))"
            case .f64(let bits): return "(f64.reinterpret_i64 (i64.const \(Int64(bitPattern: bits))))"
            case .missing: return ""
            }
        }
        func wasmValue(_ value: WasmCoredump.Value) -> Value {
            switch value {
            case .i32(let v): return .i32(v)
            case .i64(let v): return .i64(v)
            case .f32(let bits): return .f32(Float(bitPattern: bits))
            case .f64(let bits): return .f64(Double(bitPattern: bits))
            case .missing: return .i32(0)
            }
        }
        var parameterValues = functions[0].parameters.map(value)
        arguments = parameterValues.map(wasmValue)
        var text = "(module\n  (memory 1)\n"
        var frames: [(function: UInt32, locals: [WasmCoredump.Value], stack: [WasmCoredump.Value])] = []
        var trap = ""
        for (index, function) in functions.enumerated() {
            let localValues = function.locals.map(value)
            let pending = (0..<Int(random.next() % 4)).map { _ in value(kinds[Int(random.next() % 4)]) }
            text += "  (func $f\(index)" + (index == 0 ? " (export \"run\")" : "")
            text += function.parameters.map { " (param \($0))" }.joined() + " (result i32)"
            text += function.locals.map { " (local \($0))" }.joined() + "\n"
            for (local, initial) in localValues.enumerated() {
                text += "    (local.set \(function.parameters.count + local) \(constant(initial)))\n"
            }
            for item in pending { text += "    \(constant(item))\n" }
            var stack = pending
            if index + 1 < functions.count {
                let arguments = functions[index + 1].parameters.map(value)
                text += "    (call $f\(index + 1)" + arguments.map { " " + constant($0) }.joined() + ")\n"
                stack += arguments
                text += "    (drop)\n" + String(repeating: "    (drop)\n", count: pending.count)
                text += "    (i32.const 0))\n"
                frames.append((UInt32(index), parameterValues + localValues, stack))
                parameterValues = arguments
            } else {
                switch random.next() % 3 {
                case 0:
                    text += "    (unreachable))\n"
                    trap = "wasm trap: wasm `unreachable` instruction executed"
                case 1:
                    let dividend = Int32(truncatingIfNeeded: random.next())
                    text += "    (i32.div_s (i32.const \(dividend)) (i32.const 0))\n" + String(repeating: "    (drop)\n", count: pending.count + 1)
                        + "    (i32.const 0))\n"
                    stack += [.i32(dividend), .i32(0)]
                    trap = "wasm trap: integer divide by zero"
                default:
                    let address = Int32(bitPattern: 0xFFFF_FF00 | UInt32(truncatingIfNeeded: random.next() % 0xF0))
                    text += "    (i32.load (i32.const \(address)))\n" + String(repeating: "    (drop)\n", count: pending.count + 1)
                        + "    (i32.const 0))\n"
                    stack += [.i32(address)]
                    trap = "wasm trap: out of bounds memory access"
                }
                frames.append((UInt32(index), parameterValues + localValues, stack))
            }
        }
        self.text = text + ")\n"
        self.trap = trap
        expected = frames.reversed()
    }

    /// Runs the program with coredumps on and compares the coredump —
    /// taken at the trap, and read back from its encoding — with what the
    /// generator knows. Returns the differences (none: equal) and how many
    /// frames were compared.
    public func check(engine: Engine) throws -> (problems: [String], frames: Int) {
        let store = Store(engine: engine)
        store.coredumpOnTrap = true
        // The trapping thread is what is checked (other threads of a test
        // process would be stopped for nothing).
        store.coredumpIncludesOtherThreads = false
        let instance = try Instance(store: store, module: Module(engine: engine, text: text))
        do {
            _ = try instance.export("run")!.call(arguments)
            return (["the program returned instead of trapping"], 0)
        } catch let trap as Trap {
            guard trap.message == self.trap else { return (["trapped with \(trap.message), expected \(self.trap)"], 0) }
            guard let coredump = trap.coredump else { return (["the trap has no coredump"], 0) }
            let written = coredump.withMemoryBytes
            let read: WasmCoredump
            do { read = try WasmCoredump(parsing: CoredumpEncoder.encode(written)) } catch {
                return (["the encoded coredump does not read back: \(error)"], 0)
            }
            var problems: [String] = []
            guard let frames = read.threads.first?.frames else { return (["no thread"], 0) }
            if frames.count != expected.count { problems.append("\(frames.count) frames, expected \(expected.count)") }
            for (index, (frame, want)) in zip(frames, expected).enumerated() {
                if frame.function != want.function { problems.append("frame \(index): function \(frame.function), expected \(want.function)") }
                if frame.locals != want.locals { problems.append("frame \(index) (f\(want.function)): locals \(frame.locals), expected \(want.locals)") }
                if frame.stack != want.stack { problems.append("frame \(index) (f\(want.function)): stack \(frame.stack), expected \(want.stack)") }
            }
            // The frames are the trap's backtrace's.
            let backtrace = trap.backtrace.frames.compactMap { $0.symbol?.functionIndex }
            if backtrace != frames.map(\.function) { problems.append("coredump functions \(frames.map(\.function)), backtrace \(backtrace)") }
            if read.threads != written.threads || read.globals != written.globals || read.instances != written.instances {
                problems.append("the coredump read back differs from the one written")
            }
            return (problems, frames.count)
        }
    }
}
