#if canImport(Glibc)
import Glibc
#endif
import WasmJIT

/// WASI preview 1 (`wasi_snapshot_preview1`) for the reference runtime: the
/// subset real programs built with wasi-libc or Rust's `wasm32-wasi` std
/// need — standard input, output and error, arguments, environment,
/// clocks, random bytes, `proc_exit` — as ordinary host functions, so
/// backtraces, captures, stack maps and the profiler see them like any
/// other import. Every other preview 1 function returns `ENOSYS`; there
/// are no preopened directories, so a program sees no file system.
///
/// Every pointer a program passes is checked against its memory; one
/// outside it is `EFAULT` (as Wasmtime's preview 1 answers), never a read
/// or write outside.
public final class WASIPreview1: @unchecked Sendable {  // one program's, used from its thread
    public struct Configuration: Sendable {
        /// `argv`, the program's name first (as `wasmtime run` passes it).
        public var arguments: [String]
        /// `NAME=VALUE` pairs.
        public var environment: [String]
        /// The host descriptors of the guest's 0, 1 and 2.
        public var standardInput: Int32 = 0
        public var standardOutput: Int32 = 1
        public var standardError: Int32 = 2

        public init(arguments: [String], environment: [String] = []) {
            self.arguments = arguments
            self.environment = environment
        }
    }

    /// `proc_exit(code)`: thrown from the host function, so the program's
    /// wasm stops (as a host error: no wasm code runs after it) and the
    /// embedder sees the code.
    public struct Exit: Error, CustomStringConvertible {
        public var code: Int32
        public var description: String { "the program exited with status \(code) (proc_exit)" }
    }

    /// A stop asked for (`Interruption`) while the program waited in
    /// `fd_read`: thrown from the host call, so the trap's backtrace is the
    /// wasm that called it.
    public struct Interrupted: Error, CustomStringConvertible {
        public var reason: Interruption.Reason
        public var description: String {
            switch reason {
            case .signal(SIGINT): return "SIGINT while the program waited in fd_read"
            case .signal(SIGTERM): return "SIGTERM while the program waited in fd_read"
            case .signal(let number): return "signal \(number) while the program waited in fd_read"
            case .request: return "the timeout while the program waited in fd_read"
            }
        }
    }

    /// The module name of preview 1's imports.
    public static let moduleName = "wasi_snapshot_preview1"

    public let configuration: Configuration
    /// Called at the start of every preview 1 call with its caller (a
    /// checkpoint: oracles compare the walk there with libunwind's).
    public var onCall: ((Caller, String) -> Void)?
    /// Guest descriptors 0 to 2 closed with `fd_close`.
    private var closed: Set<Int32> = []

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    // errno values (preview 1's `errno` enum).
    static let success: Int32 = 0, badDescriptor: Int32 = 8, fault: Int32 = 21, invalid: Int32 = 28, io: Int32 = 29,
               notSupported: Int32 = 52, illegalSeek: Int32 = 70

    /// The host function for the import `name` with `signature`, or nil
    /// when `module` is not preview 1. A function this runtime does not
    /// implement returns `ENOSYS`; a known one imported with another
    /// signature is an error naming both.
    public func resolve(module: String, name: String, signature: Signature) throws -> Imports.Definition? {
        guard module == Self.moduleName else { return nil }
        guard let function = Self.functions[name] else {
            return .host(HostFunction(signature: signature) { _, _ in
                signature.results.map { kind in kind == .i64 ? .i64(Int64(Self.notSupported)) : .i32(Self.notSupported) }
            })
        }
        guard function.signature == signature else {
            throw SignatureMismatch(name: name, expected: function.signature, imported: signature)
        }
        let body = function.body
        return .host(HostFunction(signature: signature) { [self] caller, arguments in
            onCall?(caller, name)
            guard let memory = caller.instance.memory else { return [.i32(Self.fault)] }
            var guest = GuestMemory(memory)
            return [.i32(try body(self, &guest, arguments))]
        })
    }

    /// A known preview 1 function imported with a signature it does not have.
    public struct SignatureMismatch: Error, CustomStringConvertible {
        public var name: String
        public var expected: Signature
        public var imported: Signature
        public var description: String {
            "\(WASIPreview1.moduleName)::\(name) is \(expected), the module imports it as \(imported)"
        }
    }

    struct Function: Sendable {
        var signature: Signature
        var body: @Sendable (WASIPreview1, inout GuestMemory, [Value]) throws -> Int32
    }

    private static let functions: [String: Function] = {
        func signature(_ parameters: [ValueKind]) -> Signature { Signature(parameters: parameters, results: [.i32]) }
        return [
            "args_sizes_get": Function(signature: signature([.i32, .i32])) { wasi, memory, arguments in
                wasi.sizes(wasi.configuration.arguments, &memory, arguments)
            },
            "args_get": Function(signature: signature([.i32, .i32])) { wasi, memory, arguments in
                wasi.strings(wasi.configuration.arguments, &memory, arguments)
            },
            "environ_sizes_get": Function(signature: signature([.i32, .i32])) { wasi, memory, arguments in
                wasi.sizes(wasi.configuration.environment, &memory, arguments)
            },
            "environ_get": Function(signature: signature([.i32, .i32])) { wasi, memory, arguments in
                wasi.strings(wasi.configuration.environment, &memory, arguments)
            },
            "clock_res_get": Function(signature: signature([.i32, .i32])) { _, memory, arguments in
                guard let clock = WASIPreview1.clock(arguments[0]) else { return WASIPreview1.invalid }
                var resolution = timespec()
                clock_getres(clock, &resolution)
                let nanoseconds = UInt64(resolution.tv_sec) * 1_000_000_000 + UInt64(resolution.tv_nsec)
                return memory.store(nanoseconds, at: arguments[1]) ? WASIPreview1.success : WASIPreview1.fault
            },
            "clock_time_get": Function(signature: signature([.i32, .i64, .i32])) { _, memory, arguments in
                guard let clock = WASIPreview1.clock(arguments[0]) else { return WASIPreview1.invalid }
                var now = timespec()
                clock_gettime(clock, &now)
                let nanoseconds = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
                return memory.store(nanoseconds, at: arguments[2]) ? WASIPreview1.success : WASIPreview1.fault
            },
            "fd_write": Function(signature: signature([.i32, .i32, .i32, .i32])) { wasi, memory, arguments in
                try wasi.transfer(&memory, arguments, writing: true)
            },
            "fd_read": Function(signature: signature([.i32, .i32, .i32, .i32])) { wasi, memory, arguments in
                try wasi.transfer(&memory, arguments, writing: false)
            },
            "fd_close": Function(signature: signature([.i32])) { wasi, _, arguments in
                let fd = arguments[0].i32Bits
                guard (0...2).contains(fd), !wasi.closed.contains(fd) else { return WASIPreview1.badDescriptor }
                wasi.closed.insert(fd)
                return WASIPreview1.success
            },
            "fd_seek": Function(signature: signature([.i32, .i64, .i32, .i32])) { wasi, _, arguments in
                wasi.host(arguments[0]) == nil ? WASIPreview1.badDescriptor : WASIPreview1.illegalSeek
            },
            "fd_fdstat_get": Function(signature: signature([.i32, .i32])) { wasi, memory, arguments in
                guard let fd = wasi.host(arguments[0]) else { return WASIPreview1.badDescriptor }
                // A terminal is a character_device (2), anything else
                // unknown (0), as Wasmtime reports standard streams:
                // wasi-libc line-buffers a terminal and fully buffers the
                // rest. No flags; rights: read (2), write (64),
                // fdstat_set_flags (8).
                var bytes = [UInt8](repeating: 0, count: 24)
                bytes[0] = isatty(fd) == 1 ? 2 : 0
                let rights: UInt64 = 2 | 64 | 8
                for index in 0..<8 { bytes[8 + index] = UInt8(truncatingIfNeeded: rights >> (8 * index)) }
                return memory.store(bytes, at: arguments[1]) ? WASIPreview1.success : WASIPreview1.fault
            },
            "fd_prestat_get": Function(signature: signature([.i32, .i32])) { _, _, _ in WASIPreview1.badDescriptor },
            "fd_prestat_dir_name": Function(signature: signature([.i32, .i32, .i32])) { _, _, _ in WASIPreview1.badDescriptor },
            "random_get": Function(signature: signature([.i32, .i32])) { _, memory, arguments in
                let count = Int(UInt32(bitPattern: arguments[1].i32Bits))
                guard memory.contains(arguments[0], count) else { return WASIPreview1.fault }
                // The system's generator (getrandom(2)), eight bytes a draw.
                var generator = SystemRandomNumberGenerator()
                var bytes: [UInt8] = []
                bytes.reserveCapacity(count + 8)
                while bytes.count < count {
                    withUnsafeBytes(of: generator.next() as UInt64) { bytes += $0 }
                }
                bytes.removeLast(bytes.count - count)
                return memory.store(bytes, at: arguments[0]) ? WASIPreview1.success : WASIPreview1.fault
            },
            "sched_yield": Function(signature: signature([])) { _, _, _ in
                sched_yield()
                return WASIPreview1.success
            },
            "proc_exit": Function(signature: Signature(parameters: [.i32], results: [])) { _, _, arguments in
                throw Exit(code: arguments[0].i32Bits)
            },
        ]
    }()

    /// The host descriptor of guest descriptor `value` (0 to 2, not closed).
    func host(_ value: Value) -> Int32? {
        let fd = value.i32Bits
        guard !closed.contains(fd) else { return nil }
        switch fd {
        case 0: return configuration.standardInput
        case 1: return configuration.standardOutput
        case 2: return configuration.standardError
        default: return nil
        }
    }

    static func clock(_ value: Value) -> clockid_t? {
        switch value.i32Bits {
        case 0: return CLOCK_REALTIME
        case 1: return CLOCK_MONOTONIC
        case 2: return CLOCK_PROCESS_CPUTIME_ID
        case 3: return CLOCK_THREAD_CPUTIME_ID
        default: return nil
        }
    }

    /// `*_sizes_get`: the count and the bytes the strings take with their
    /// terminating NULs.
    func sizes(_ strings: [String], _ memory: inout GuestMemory, _ arguments: [Value]) -> Int32 {
        let bytes = strings.reduce(0) { $0 + $1.utf8.count + 1 }
        guard memory.store(UInt32(strings.count), at: arguments[0]), memory.store(UInt32(bytes), at: arguments[1]) else {
            return Self.fault
        }
        return Self.success
    }

    /// `args_get`/`environ_get`: the pointers at `arguments[0]`, the
    /// NUL-terminated strings from `arguments[1]`.
    func strings(_ strings: [String], _ memory: inout GuestMemory, _ arguments: [Value]) -> Int32 {
        var pointer = UInt32(bitPattern: arguments[0].i32Bits)
        var buffer = UInt32(bitPattern: arguments[1].i32Bits)
        for string in strings {
            let bytes = Array(string.utf8) + [0]
            guard memory.store(buffer, at: .i32(Int32(bitPattern: pointer))),
                  memory.store(bytes, at: .i32(Int32(bitPattern: buffer))) else { return Self.fault }
            pointer &+= 4
            buffer &+= UInt32(bytes.count)
        }
        return Self.success
    }

    /// `fd_write`/`fd_read` over the iovec list: each buffer in turn, a
    /// short transfer ending the call (as POSIX readv/writev report it).
    func transfer(_ memory: inout GuestMemory, _ arguments: [Value], writing: Bool) throws -> Int32 {
        // Output to 1 and 2, input from 0.
        let guest = arguments[0].i32Bits
        guard let fd = host(arguments[0]), writing ? guest != 0 : guest == 0 else { return Self.badDescriptor }
        let list = UInt32(bitPattern: arguments[1].i32Bits), count = UInt32(bitPattern: arguments[2].i32Bits)
        guard count <= 1024, memory.contains(arguments[1], Int(count) * 8) else { return Self.fault }
        var total: UInt32 = 0
        for index in 0..<count {
            guard let base = memory.load(at: list &+ 8 * index), let length = memory.load(at: list &+ 8 * index &+ 4) else {
                return Self.fault
            }
            guard memory.contains(.i32(Int32(bitPattern: base)), Int(length)) else { return Self.fault }
            let done = memory.withBytes(at: base, count: Int(length)) { buffer -> Int in
                var moved = 0
                while moved < buffer.count {
                    let result = writing ? write(fd, buffer.baseAddress! + moved, buffer.count - moved)
                        : read(fd, buffer.baseAddress! + moved, buffer.count - moved)
                    if result < 0 && errno == EINTR {
                        // Ctrl-C while the program waits for input: stop
                        // here, with the wasm below this call on the trace.
                        if Interruption.pending != nil { return -2 }
                        continue
                    }
                    guard result > 0 else { return result < 0 ? -1 : moved }
                    moved += result
                    if !writing { break }  // a read returns what is there
                }
                return moved
            }
            if done == -2, let reason = Interruption.pending { throw Interrupted(reason: reason) }
            guard done >= 0 else { return Self.io }
            total &+= UInt32(done)
            if done < Int(length) { break }
        }
        return memory.store(total, at: arguments[3]) ? Self.success : Self.fault
    }
}

/// A guest's linear memory, every access checked against its current size.
struct GuestMemory {
    let memory: Memory

    init(_ memory: Memory) { self.memory = memory }

    /// Whether `count` bytes from the guest address `value` are inside.
    func contains(_ value: Value, _ count: Int) -> Bool {
        let start = Int(UInt32(bitPattern: value.i32Bits))
        return count >= 0 && start <= memory.size && count <= memory.size - start
    }

    func withBytes<R>(at address: UInt32, count: Int, _ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
        memory.withBytes { all in
            // SAFETY: callers check `contains` first; the slice is inside.
            body(UnsafeMutableRawBufferPointer(rebasing: all[Int(address)..<(Int(address) + count)]))
        }
    }

    func load(at address: UInt32) -> UInt32? {
        guard contains(.i32(Int32(bitPattern: address)), 4) else { return nil }
        return withBytes(at: address, count: 4) { $0.loadUnaligned(as: UInt32.self).littleEndian }
    }

    mutating func store(_ bytes: [UInt8], at value: Value) -> Bool {
        guard contains(value, bytes.count) else { return false }
        withBytes(at: UInt32(bitPattern: value.i32Bits), count: bytes.count) { $0.copyBytes(from: bytes) }
        return true
    }

    mutating func store<T: FixedWidthInteger>(_ integer: T, at value: Value) -> Bool {
        store(withUnsafeBytes(of: integer.littleEndian) { Array($0) }, at: value)
    }
}

extension Value {
    /// The bits of an i32 argument (0 for anything else).
    var i32Bits: Int32 {
        if case .i32(let value) = self { return value }
        return 0
    }
}
