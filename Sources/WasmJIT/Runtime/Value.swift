/// A wasm value crossing between Swift and wasm.
///
/// Floats compare by their bits, so a NaN equals the same NaN: what a test
/// of wasm semantics needs (use `Float`'s own `==` for IEEE equality).
public enum Value: Hashable, Sendable, CustomStringConvertible {
    case i32(Int32)
    case i64(Int64)
    case f32(Float)
    case f64(Double)
    /// A `funcref`: a function reference, or null.
    case funcref(FuncRef?)
    /// An `externref`: a handle to a host object, or null.
    case externref(ExternRef?)
    /// An `exnref`: a handle to a caught wasm exception, or null.
    case exnref(ExnRef?)

    /// The value's kind.
    public var kind: ValueKind {
        switch self {
        case .i32: return .i32
        case .i64: return .i64
        case .f32: return .f32
        case .f64: return .f64
        case .funcref: return .funcref
        case .externref: return .externref
        case .exnref: return .exnref
        }
    }

    /// The 64-bit slot generated code keeps the value in.
    var slot: UInt64 {
        switch self {
        case .i32(let value): return UInt64(UInt32(bitPattern: value))
        case .i64(let value): return UInt64(bitPattern: value)
        case .f32(let value): return UInt64(value.bitPattern)
        case .f64(let value): return value.bitPattern
        case .funcref(let reference): return UInt64(reference?.address ?? 0)
        case .externref(let reference): return reference?.handle ?? 0
        case .exnref(let reference): return reference?.handle ?? 0
        }
    }

    /// The value of `kind` held in a 64-bit slot.
    init(slot: UInt64, kind: ValueKind) {
        switch kind {
        case .i32: self = .i32(Int32(truncatingIfNeeded: slot))
        case .i64: self = .i64(Int64(bitPattern: slot))
        case .f32: self = .f32(Float(bitPattern: UInt32(truncatingIfNeeded: slot)))
        case .f64: self = .f64(Double(bitPattern: slot))
        case .funcref: self = .funcref(slot == 0 ? nil : FuncRef(address: UInt(slot)))
        case .externref: self = .externref(slot == 0 ? nil : ExternRef(handle: slot))
        case .exnref: self = .exnref(slot == 0 ? nil : ExnRef(handle: slot))
        }
    }

    public static func == (a: Value, b: Value) -> Bool { a.kind == b.kind && a.slot == b.slot }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(kind)
        hasher.combine(slot)
    }

    public var description: String {
        switch self {
        case .i32(let value): return String(value)
        case .i64(let value): return String(value)
        case .f32(let value): return String(value)
        case .f64(let value): return String(value)
        case .funcref(let reference): return reference.map { "funcref(0x\(String($0.address, radix: 16)))" } ?? "null"
        case .externref(let reference): return reference.map { "externref(\($0.handle))" } ?? "null"
        case .exnref(let reference): return reference.map { "exnref(\($0.handle))" } ?? "null"
        }
    }
}

/// A non-null `externref`: the handle of a host object in a store's object
/// table. Wasm sees only the handle.
public struct ExternRef: Hashable, Sendable {
    public let handle: UInt64

    public init(handle: UInt64) {
        precondition(handle != 0, "0 is the null reference")
        self.handle = handle
    }
}
