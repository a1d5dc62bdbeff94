import Testing
import WasmJIT

/// A program, an export, and the argument tuples to call it with.
struct DifferentialCase: CustomTestStringConvertible, Sendable {
    let name: String
    let text: String
    let export: String
    let inputs: [[UInt64]]
    var testDescription: String { name }
}

let edge32: [UInt64] = [0, 1, 2, 3, 7, 31, 32, 33, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFFE, 0x1234_5678, 0x8765_4321]
let edge64: [UInt64] = [0, 1, 2, 63, 64, 65, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF,
                        0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFE, 0x0123_4567_89AB_CDEF]

let programs: [DifferentialCase] = [
    DifferentialCase(name: "recursive factorial", text: """
        (module
          (func $fac (export "fac") (param i64) (result i64)
            local.get 0
            i64.eqz
            if (result i64)
              i64.const 1
            else
              local.get 0
              local.get 0
              i64.const 1
              i64.sub
              call $fac
              i64.mul
            end))
        """, export: "fac", inputs: (0...25).map { [$0] }),
    DifferentialCase(name: "recursive fibonacci", text: """
        (module
          (func $fib (export "fib") (param i32) (result i32)
            local.get 0
            i32.const 2
            i32.lt_u
            if (result i32)
              local.get 0
            else
              local.get 0
              i32.const 1
              i32.sub
              call $fib
              local.get 0
              i32.const 2
              i32.sub
              call $fib
              i32.add
            end))
        """, export: "fib", inputs: (0...24).map { [$0] }),
    DifferentialCase(name: "iterative fibonacci with a loop and locals", text: """
        (module
          (func (export "fib") (param $n i64) (result i64) (local $a i64) (local $b i64) (local $t i64)
            i64.const 1
            local.set $b
            block $done
              loop $next
                local.get $n
                i64.eqz
                br_if $done
                local.get $a
                local.get $b
                i64.add
                local.set $t
                local.get $b
                local.set $a
                local.get $t
                local.set $b
                local.get $n
                i64.const 1
                i64.sub
                local.set $n
                br $next
              end
            end
            local.get $a))
        """, export: "fib", inputs: [0, 1, 2, 10, 50, 90, 93, 100, 200].map { [$0] }),
    DifferentialCase(name: "nested blocks, br_if with a value, early return", text: """
        (module
          (func (export "classify") (param i32) (result i32)
            block $out (result i32)
              block $small
                local.get 0
                i32.const 10
                i32.lt_s
                br_if $small
                i32.const 100
                local.get 0
                i32.const 1000
                i32.gt_s
                br_if $out
                drop
                local.get 0
                i32.const 500
                i32.eq
                if
                  i32.const 5
                  return
                end
                i32.const 2
                br $out
              end
              i32.const 1
            end
            local.get 0
            i32.add))
        """, export: "classify", inputs: [0, 5, 9, 10, 11, 499, 500, 501, 1000, 1001, 0x8000_0000, 0x7FFF_FFFF].map { [$0] }),
    DifferentialCase(name: "sum of 1..n in a loop with select", text: """
        (module
          (func (export "sum") (param $n i32) (result i32) (local $acc i32)
            loop $again
              local.get $acc
              local.get $n
              local.get $n
              i32.const 3
              i32.rem_u
              select
              local.get $acc
              i32.add
              local.set $acc
              local.get $n
              i32.const 1
              i32.sub
              local.tee $n
              br_if $again
            end
            local.get $acc))
        """, export: "sum", inputs: [1, 2, 3, 10, 100, 1000, 65536].map { [$0] }),
    DifferentialCase(name: "memory: stores and loads of every width", text: """
        (module
          (memory 1)
          (data (i32.const 16) "\\01\\02\\03\\04\\05\\06\\07\\08\\f0\\f1\\f2\\f3\\f4\\f5\\f6\\f7")
          (func (export "mix") (param $v i64) (param $at i32) (result i64)
            local.get $at
            local.get $v
            i64.store offset=64
            local.get $at
            local.get $v
            i64.store32 offset=128
            local.get $at
            local.get $v
            i64.store16 offset=140
            local.get $at
            local.get $v
            i64.store8 offset=150
            local.get $at
            i64.load offset=64
            local.get $at
            i64.load32_s offset=128
            i64.add
            local.get $at
            i64.load32_u offset=128
            i64.xor
            local.get $at
            i64.load16_s offset=140
            i64.add
            local.get $at
            i64.load16_u offset=140
            i64.mul
            local.get $at
            i64.load8_s offset=150
            i64.sub
            local.get $at
            i64.load8_u offset=150
            i64.or
            i32.const 16
            i64.load
            i64.add
            i32.const 24
            i32.load8_s
            i64.extend_i32_s
            i64.add
            i32.const 25
            i32.load16_u
            i64.extend_i32_u
            i64.add
            i32.const 20
            i32.load
            i64.extend_i32_u
            i64.add))
        """, export: "mix", inputs: [[0, 0], [1, 3], [0xFFFF_FFFF_FFFF_FFFF, 100], [0x8000_0000_8000_8080, 1000], [0x0123_4567_89AB_CDEF, 65000]]),
    DifferentialCase(name: "memory: an array summed by a loop, with globals", text: """
        (module
          (memory 1)
          (global $count (mut i32) (i32.const 0))
          (global $bias i64 (i64.const -7))
          (func $fill (param $n i32) (local $i i32)
            loop $l
              local.get $i
              i32.const 4
              i32.mul
              local.get $i
              local.get $i
              i32.mul
              i32.store
              local.get $i
              i32.const 1
              i32.add
              local.tee $i
              local.get $n
              i32.lt_u
              br_if $l
            end)
          (func (export "sum") (param $n i32) (result i64) (local $i i32) (local $acc i64)
            local.get $n
            call $fill
            block $done
              loop $l
                local.get $i
                local.get $n
                i32.ge_u
                br_if $done
                local.get $acc
                local.get $i
                i32.const 4
                i32.mul
                i32.load
                i64.extend_i32_u
                i64.add
                local.set $acc
                global.get $count
                i32.const 1
                i32.add
                global.set $count
                local.get $i
                i32.const 1
                i32.add
                local.set $i
                br $l
              end
            end
            local.get $acc
            global.get $bias
            i64.add
            global.get $count
            i64.extend_i32_u
            i64.add))
        """, export: "sum", inputs: [[1], [2], [10], [1000], [16000]]),
    DifferentialCase(name: "eight parameters: stack arguments through calls and the entry trampoline", text: """
        (module
          (func $weigh (param i64 i64 i64 i64 i64 i64 i64 i64) (result i64)
            local.get 0
            local.get 1
            i64.const 2
            i64.mul
            i64.add
            local.get 2
            i64.const 3
            i64.mul
            i64.add
            local.get 3
            i64.const 5
            i64.mul
            i64.add
            local.get 4
            i64.const 7
            i64.mul
            i64.add
            local.get 5
            i64.const 11
            i64.mul
            i64.add
            local.get 6
            i64.const 13
            i64.mul
            i64.add
            local.get 7
            i64.const 17
            i64.mul
            i64.add)
          (func (export "outer") (param i64 i64 i64 i64 i64 i64 i64 i64) (result i64)
            local.get 7
            local.get 6
            local.get 5
            local.get 4
            local.get 3
            local.get 2
            local.get 1
            local.get 0
            call $weigh
            local.get 0
            local.get 1
            local.get 2
            local.get 3
            local.get 4
            local.get 5
            local.get 6
            local.get 7
            call $weigh
            i64.sub))
        """, export: "outer", inputs: [[1, 2, 3, 4, 5, 6, 7, 8], [100, 0, 0, 0, 0, 0, 0, 1], [0xFFFF_FFFF_FFFF_FFFF, 2, 3, 4, 5, 6, 7, 0x8000_0000_0000_0000]]),
]

/// One exported function per integer operator, for the operator battery.
func operatorModule() -> (text: String, binary: [(String, Bool)], unary: [(String, Bool)]) {
    let binary32 = ["add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u", "and", "or", "xor", "shl", "shr_s", "shr_u",
                    "rotl", "rotr", "eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
    let unary32 = ["clz", "ctz", "popcnt", "eqz", "extend8_s", "extend16_s"]
    let unary64 = unary32 + ["extend32_s"]
    var text = "(module\n"
    var binary: [(String, Bool)] = []
    var unary: [(String, Bool)] = []
    for (type, is64) in [("i32", false), ("i64", true)] {
        for op in binary32 {
            let result = ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"].contains(op) ? "i32" : type
            text += "  (func (export \"\(type).\(op)\") (param \(type) \(type)) (result \(result)) local.get 0 local.get 1 \(type).\(op))\n"
            binary.append(("\(type).\(op)", is64))
        }
        for op in (is64 ? unary64 : unary32) {
            let result = op == "eqz" ? "i32" : type
            text += "  (func (export \"\(type).\(op)\") (param \(type)) (result \(result)) local.get 0 \(type).\(op))\n"
            unary.append(("\(type).\(op)", is64))
        }
    }
    text += "  (func (export \"i32.wrap_i64\") (param i64) (result i32) local.get 0 i32.wrap_i64)\n"
    text += "  (func (export \"i64.extend_i32_s\") (param i32) (result i64) local.get 0 i64.extend_i32_s)\n"
    text += "  (func (export \"i64.extend_i32_u\") (param i32) (result i64) local.get 0 i64.extend_i32_u)\n"
    text += ")"
    return (text, binary, unary)
}

@Suite("Compiled results equal WasmKit's interpreter")
struct CompilerResultsTests {
    func compare(_ program: DifferentialCase) throws {
        var harness = Harness()
        harness.define("unused") { _, _ in [] }
        let instance = try harness.instantiate(program.text)
        let reference = try Interpreter.Loaded(text: program.text)
        let function = try #require(instance.export(program.export))
        let kinds = function.signature.parameters.map { $0 == .i64 }
        var compared = 0
        defer { #expect(compared > 0, "\(program.name): every input trapped; nothing was compared") }
        for input in program.inputs {
            let expected = try reference.call(program.export, input, kinds: kinds)
            let arguments = zip(input, function.signature.parameters).map { value, kind in
                kind == .i64 ? Value.i64(Int64(bitPattern: value)) : Value.i32(Int32(truncatingIfNeeded: value))
            }
            guard case .results(let values) = expected else {
                // The interpreter trapped: so must the compiled code.
                #expect(throws: Trap.self, "\(program.name) \(program.export)\(input)") { try function.call(arguments) }
                continue
            }
            let actual = try function.call(arguments).map { value -> UInt64 in
                switch value {
                case .i32(let v): return UInt64(UInt32(bitPattern: v))
                case .i64(let v): return UInt64(bitPattern: v)
                case .f32(let v): return UInt64(v.bitPattern)
                case .f64(let v): return v.bitPattern
                case .externref, .funcref, .exnref: return 0
                }
            }
            #expect(actual == values, "\(program.name) \(program.export)\(input)")
            compared += 1
        }
    }

    @Test("programs", arguments: programs)
    func program(_ program: DifferentialCase) throws {
        try compare(program)
    }

    @Test("every integer operator on edge values")
    func operators() throws {
        let (text, binary, unary) = operatorModule()
        for (name, is64) in binary {
            let values = is64 ? edge64 : edge32
            try compare(DifferentialCase(name: name, text: text, export: name,
                                         inputs: values.flatMap { a in values.map { b in [a, b] } }))
        }
        for (name, is64) in unary {
            try compare(DifferentialCase(name: name, text: text, export: name, inputs: (is64 ? edge64 : edge32).map { [$0] }))
        }
        try compare(DifferentialCase(name: "wrap", text: text, export: "i32.wrap_i64", inputs: edge64.map { [$0] }))
        try compare(DifferentialCase(name: "extend_s", text: text, export: "i64.extend_i32_s", inputs: edge32.map { [$0] }))
        try compare(DifferentialCase(name: "extend_u", text: text, export: "i64.extend_i32_u", inputs: edge32.map { [$0] }))
    }
}
