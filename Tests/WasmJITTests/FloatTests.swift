import Testing
import WasmJIT

/// f32 and f64 where x86 and wasm disagree: min/max with NaN and signed
/// zeros, every bound of every trapping and saturating truncation,
/// unsigned conversions, rounding ties, sign operations. Expected values
/// are IEEE 754 and the wasm spec's, written out.
@Suite("Floats")
struct FloatTests {
    static let module = """
        (module $floats
          (func (export "f32.min") (param f32 f32) (result f32) local.get 0 local.get 1 f32.min)
          (func (export "f32.max") (param f32 f32) (result f32) local.get 0 local.get 1 f32.max)
          (func (export "f64.min") (param f64 f64) (result f64) local.get 0 local.get 1 f64.min)
          (func (export "f64.max") (param f64 f64) (result f64) local.get 0 local.get 1 f64.max)
          (func (export "f32.copysign") (param f32 f32) (result f32) local.get 0 local.get 1 f32.copysign)
          (func (export "f64.abs") (param f64) (result f64) local.get 0 f64.abs)
          (func (export "f32.neg") (param f32) (result f32) local.get 0 f32.neg)
          (func (export "f64.nearest") (param f64) (result f64) local.get 0 f64.nearest)
          (func (export "f32.floor") (param f32) (result f32) local.get 0 f32.floor)
          (func (export "f64.ceil") (param f64) (result f64) local.get 0 f64.ceil)
          (func (export "f32.sqrt") (param f32) (result f32) local.get 0 f32.sqrt)
          (func (export "f64.lt") (param f64 f64) (result i32) local.get 0 local.get 1 f64.lt)
          (func (export "f64.ge") (param f64 f64) (result i32) local.get 0 local.get 1 f64.ge)
          (func (export "f32.eq") (param f32 f32) (result i32) local.get 0 local.get 1 f32.eq)
          (func (export "f32.ne") (param f32 f32) (result i32) local.get 0 local.get 1 f32.ne)
          (func (export "i32.trunc_f32_s") (param f32) (result i32) local.get 0 i32.trunc_f32_s)
          (func (export "i32.trunc_f64_s") (param f64) (result i32) local.get 0 i32.trunc_f64_s)
          (func (export "i32.trunc_f64_u") (param f64) (result i32) local.get 0 i32.trunc_f64_u)
          (func (export "i64.trunc_f64_u") (param f64) (result i64) local.get 0 i64.trunc_f64_u)
          (func (export "i64.trunc_f32_s") (param f32) (result i64) local.get 0 i64.trunc_f32_s)
          (func (export "i32.trunc_sat_f64_s") (param f64) (result i32) local.get 0 i32.trunc_sat_f64_s)
          (func (export "i64.trunc_sat_f32_u") (param f32) (result i64) local.get 0 i64.trunc_sat_f32_u)
          (func (export "f32.convert_i64_u") (param i64) (result f32) local.get 0 f32.convert_i64_u)
          (func (export "f64.convert_i64_u") (param i64) (result f64) local.get 0 f64.convert_i64_u)
          (func (export "f64.convert_i32_u") (param i32) (result f64) local.get 0 f64.convert_i32_u)
          (func (export "f32.demote_f64") (param f64) (result f32) local.get 0 f32.demote_f64)
          (func (export "i32.reinterpret_f32") (param f32) (result i32) local.get 0 i32.reinterpret_f32)
          (memory 1)
          (func (export "store_load") (param f64) (result f64)
            i32.const 8 local.get 0 f64.store
            i32.const 8 f64.load)
          (global $g (mut f32) (f32.const 1.5))
          (func (export "global") (param f32) (result f32) global.get $g local.get 0 global.set $g))
        """

    let instance: Instance

    init() throws {
        let engine = Engine()
        instance = try Instance(store: Store(engine: engine), module: Module(engine: engine, text: Self.module))
    }

    func call(_ name: String, _ arguments: Value...) throws -> Value {
        try #require(try instance.export(name)?.call(arguments).first)
    }

    func trap(_ name: String, _ arguments: Value...) -> String? {
        do {
            _ = try instance.export(name)?.call(arguments)
            return nil
        } catch let trap as Trap {
            return trap.code?.message
        } catch {
            return "\(error)"
        }
    }

    @Test("min and max: a NaN operand gives NaN; -0 is less than +0")
    func minMax() throws {
        #expect(try call("f32.min", .f32(-0.0), .f32(0.0)) == .f32(-0.0))
        #expect(try call("f32.min", .f32(0.0), .f32(-0.0)) == .f32(-0.0))
        #expect(try call("f32.max", .f32(-0.0), .f32(0.0)) == .f32(0.0))
        #expect(try call("f64.max", .f64(0.0), .f64(-0.0)) == .f64(0.0))
        #expect(try call("f64.min", .f64(-0.0), .f64(-0.0)) == .f64(-0.0))
        guard case .f32(let nan) = try call("f32.min", .f32(1), .f32(.nan)), case .f64(let nan2) = try call("f64.max", .f64(.nan), .f64(2)) else {
            Issue.record("not floats")
            return
        }
        #expect(nan.isNaN && nan2.isNaN)
        #expect(try call("f64.min", .f64(-1), .f64(2)) == .f64(-1))
        #expect(try call("f64.max", .f64(-.infinity), .f64(-2)) == .f64(-2))
    }

    @Test("sign operations touch only the sign bit, NaN payloads included")
    func signs() throws {
        #expect(try call("f32.copysign", .f32(3), .f32(-0.0)) == .f32(-3))
        #expect(try call("f32.copysign", .f32(-3), .f32(1)) == .f32(3))
        #expect(try call("f64.abs", .f64(-0.0)) == .f64(0.0))
        let payload = Float(bitPattern: 0xFFA0_0001)  // a negative signalling NaN
        #expect(try call("f32.neg", .f32(payload)) == .f32(Float(bitPattern: 0x7FA0_0001)))
        #expect(try call("i32.reinterpret_f32", .f32(Float(bitPattern: 0x7FA0_0001))) == .i32(0x7FA0_0001))
    }

    @Test("rounding: ties to even, floor, ceil and sqrt")
    func rounding() throws {
        #expect(try call("f64.nearest", .f64(2.5)) == .f64(2))
        #expect(try call("f64.nearest", .f64(-3.5)) == .f64(-4))
        #expect(try call("f64.nearest", .f64(-0.5)) == .f64(-0.0))
        #expect(try call("f32.floor", .f32(-1.5)) == .f32(-2))
        #expect(try call("f64.ceil", .f64(-0.5)) == .f64(-0.0))
        #expect(try call("f32.sqrt", .f32(2)) == .f32(Float(2).squareRoot()))
    }

    @Test("comparisons are false for NaN, except ne")
    func comparisons() throws {
        #expect(try call("f64.lt", .f64(1), .f64(2)) == .i32(1))
        #expect(try call("f64.lt", .f64(.nan), .f64(2)) == .i32(0))
        #expect(try call("f64.ge", .f64(2), .f64(2)) == .i32(1))
        #expect(try call("f64.ge", .f64(2), .f64(.nan)) == .i32(0))
        #expect(try call("f32.eq", .f32(-0.0), .f32(0.0)) == .i32(1))
        #expect(try call("f32.eq", .f32(.nan), .f32(.nan)) == .i32(0))
        #expect(try call("f32.ne", .f32(.nan), .f32(.nan)) == .i32(1))
    }

    @Test("trapping truncation: every bound, both sides; NaN is an invalid conversion")
    func truncation() throws {
        #expect(try call("i32.trunc_f32_s", .f32(-2147483648)) == .i32(Int32.min))
        #expect(trap("i32.trunc_f32_s", .f32(2147483648)) == "integer overflow")
        #expect(trap("i32.trunc_f32_s", .f32(Float(-2147483648).nextDown)) == "integer overflow")
        #expect(try call("i32.trunc_f64_s", .f64(-2147483648.9)) == .i32(Int32.min))
        #expect(trap("i32.trunc_f64_s", .f64(-2147483649)) == "integer overflow")
        #expect(try call("i32.trunc_f64_s", .f64(2147483647.9)) == .i32(Int32.max))
        #expect(try call("i32.trunc_f64_u", .f64(-0.9)) == .i32(0))
        #expect(trap("i32.trunc_f64_u", .f64(-1)) == "integer overflow")
        #expect(try call("i32.trunc_f64_u", .f64(4294967295.9)) == .i32(-1))
        #expect(trap("i32.trunc_f64_u", .f64(4294967296)) == "integer overflow")
        #expect(try call("i64.trunc_f64_u", .f64(9223372036854775808)) == .i64(Int64.min))
        #expect(try call("i64.trunc_f64_u", .f64(18446744073709549568)) == .i64(-2048))
        #expect(trap("i64.trunc_f64_u", .f64(18446744073709551616)) == "integer overflow")
        #expect(try call("i64.trunc_f32_s", .f32(-9223372036854775808)) == .i64(Int64.min))
        #expect(trap("i64.trunc_f32_s", .f32(9223372036854775808)) == "integer overflow")
        #expect(trap("i32.trunc_f32_s", .f32(.nan)) == "invalid conversion to integer")
        #expect(trap("i64.trunc_f64_u", .f64(-.infinity)) == "integer overflow")
    }

    @Test("saturating truncation: NaN is 0, out of range is the nearest bound")
    func saturation() throws {
        #expect(try call("i32.trunc_sat_f64_s", .f64(.nan)) == .i32(0))
        #expect(try call("i32.trunc_sat_f64_s", .f64(-1e300)) == .i32(Int32.min))
        #expect(try call("i32.trunc_sat_f64_s", .f64(1e300)) == .i32(Int32.max))
        #expect(try call("i32.trunc_sat_f64_s", .f64(-7.9)) == .i32(-7))
        #expect(try call("i64.trunc_sat_f32_u", .f32(-5)) == .i64(0))
        #expect(try call("i64.trunc_sat_f32_u", .f32(.infinity)) == .i64(-1))
        #expect(try call("i64.trunc_sat_f32_u", .f32(1.8446743e19)) == .i64(Int64(bitPattern: 18_446_742_974_197_923_840)))
    }

    @Test("unsigned conversions round correctly across the sign bit")
    func unsignedConversions() throws {
        #expect(try call("f32.convert_i64_u", .i64(-1)) == .f32(18446744073709551616))
        #expect(try call("f64.convert_i64_u", .i64(Int64.min)) == .f64(9223372036854775808))
        // 2^63 + 2^40 + 1 needs the sticky bit to round up in f32? No: to
        // nearest, 2^63 + 2^40 + 1 is 2^63 + 2^40 in f32's 24 bits.
        #expect(try call("f32.convert_i64_u", .i64(Int64(bitPattern: 0x8000_0100_0000_0001))) == .f32(Float(UInt64(0x8000_0100_0000_0001))))
        #expect(try call("f64.convert_i64_u", .i64(Int64(bitPattern: 0x8000_0000_0000_0401))) == .f64(Double(UInt64(0x8000_0000_0000_0401))))
        #expect(try call("f64.convert_i32_u", .i32(-1)) == .f64(4294967295))
        #expect(try call("f32.demote_f64", .f64(1e300)) == .f32(.infinity))
    }

    @Test("floats in memory and in globals keep their bits")
    func memoryAndGlobals() throws {
        #expect(try call("store_load", .f64(-1.25e-300)) == .f64(-1.25e-300))
        #expect(try call("global", .f32(2.5)) == .f32(1.5))
        #expect(try call("global", .f32(0)) == .f32(2.5))
    }
}
