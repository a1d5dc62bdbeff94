// The standard wasm coredump format (WebAssembly/tool-conventions
// Coredump.md): the model, its encoder and its reader. No dependency on
// the runtime: `dump` reads any producer's coredumps with it.

/// A wasm coredump in the standard format (WebAssembly/tool-conventions
/// `Coredump.md`): a wasm module that is never instantiated, holding the
/// store's memories (as active data segments), its globals (as constant
/// globals), and custom sections `core` (the process), `coremodules`,
/// `coreinstances` and one `corestack` per thread — each frame with its
/// instance, function index, code offset, and the value of every local and
/// operand-stack entry. docs/post-mortem.md#wasm-coredumps.
///
/// Locals and operand stacks come from the frame layout (every wasm value
/// lives in a frame slot between instructions; each call and trap site
/// records the operand stack's kinds) read in the trap's stack snapshot
/// (`Store.enableTrapSnapshots`); references are written as missing
/// (`0x01`), as the format has no value for them.
public struct WasmCoredump: Sendable {
    /// A local's or operand's value as the format encodes it.
    public enum Value: Hashable, Sendable, CustomStringConvertible {
        case missing
        case i32(Int32)
        case i64(Int64)
        /// The bits (NaN payloads and the sign of zero kept).
        case f32(UInt32)
        case f64(UInt64)

        /// The value a 64-bit frame slot holds for a value of type `type`
        /// (the binary format's byte): missing when the slot could not be
        /// read, or for a reference (the format has no value for one).
        public init(slot: UInt64?, type: UInt8) {
            guard let slot else {
                self = .missing
                return
            }
            switch type {
            case 0x7F: self = .i32(Int32(truncatingIfNeeded: slot))
            case 0x7E: self = .i64(Int64(bitPattern: slot))
            case 0x7D: self = .f32(UInt32(truncatingIfNeeded: slot))
            case 0x7C: self = .f64(slot)
            default: self = .missing
            }
        }

        public var description: String {
            switch self {
            case .missing: return "<missing>"
            case .i32(let value): return "i32 \(value)"
            case .i64(let value): return "i64 \(value)"
            case .f32(let bits): return "f32 \(Self.float(Double(Float(bitPattern: bits)), bits: UInt64(bits), width: 8))"
            case .f64(let bits): return "f64 \(Self.float(Double(bitPattern: bits), bits: bits, width: 16))"
            }
        }

        /// A float as a number, or its bits when a NaN (payloads matter).
        static func float(_ value: Double, bits: UInt64, width: Int) -> String {
            guard value.isNaN else { return value == 0 && value.sign == .minus ? "-0" : "\(value)" }
            let hex = String(bits, radix: 16)
            return "nan:0x" + String(repeating: "0", count: max(0, width - hex.count)) + hex
        }
    }

    public struct Frame: Hashable, Sendable {
        public init(instance: UInt32, function: UInt32, codeOffset: UInt32, locals: [Value], stack: [Value]) {
            self.instance = instance
            self.function = function
            self.codeOffset = codeOffset
            self.locals = locals
            self.stack = stack
        }

        /// Index into `instances`.
        public var instance: UInt32
        /// The function index in the instance's module.
        public var function: UInt32
        /// The instruction's offset from the function body's start (its
        /// locals declaration), as Wasmtime writes it; 0 when unknown.
        public var codeOffset: UInt32
        public var locals: [Value]
        /// Bottom first.
        public var stack: [Value]
    }

    public struct Thread: Hashable, Sendable {
        public init(name: String, frames: [Frame]) {
            self.name = name
            self.frames = frames
        }

        public var name: String
        /// Newest first.
        public var frames: [Frame]
    }

    public struct Instance: Hashable, Sendable {
        public init(module: UInt32, memories: [UInt32], globals: [UInt32]) {
            self.module = module
            self.memories = memories
            self.globals = globals
        }

        /// Index into `modules`.
        public var module: UInt32
        /// Indices into the coredump's memories and globals, in the
        /// instance's own order.
        public var memories: [UInt32]
        public var globals: [UInt32]
    }

    /// A value type as the binary format writes it.
    public enum ValueType: UInt8, Hashable, Sendable, CustomStringConvertible {
        case i32 = 0x7F, i64 = 0x7E, f32 = 0x7D, f64 = 0x7C, v128 = 0x7B
        case funcref = 0x70, externref = 0x6F, exnref = 0x69

        public var description: String {
            switch self {
            case .i32: return "i32"
            case .i64: return "i64"
            case .f32: return "f32"
            case .f64: return "f64"
            case .v128: return "v128"
            case .funcref: return "funcref"
            case .externref: return "externref"
            case .exnref: return "exnref"
            }
        }
    }

    public struct Global: Hashable, Sendable {
        public var type: ValueType
        /// The bits (0 for a reference, written as null; a v128's low half).
        public var bits: UInt64

        public init(type: ValueType, bits: UInt64) {
            self.type = type
            self.bits = bits
        }
    }

    public struct MemoryImage: Sendable {
        public init(pages: UInt64, maximumPages: UInt64?, segments: [(offset: UInt64, bytes: [UInt8])]) {
            self.pages = pages
            self.maximumPages = maximumPages
            self.segments = segments
        }

        public var pages: UInt64
        public var maximumPages: UInt64?
        /// The non-zero parts: (offset, bytes).
        public var segments: [(offset: UInt64, bytes: [UInt8])]
    }

    /// The `core` section's executable name.
    public var processName: String
    /// `coremodules`: a path, URL or name each.
    public var modules: [String]
    public var instances: [Instance]
    public var memories: [MemoryImage]
    public var globals: [Global]
    public var threads: [Thread]

    public init(processName: String, modules: [String], instances: [Instance], memories: [MemoryImage],
                globals: [Global], threads: [Thread]) {
        self.processName = processName
        self.modules = modules
        self.instances = instances
        self.memories = memories
        self.globals = globals
        self.threads = threads
    }
}
