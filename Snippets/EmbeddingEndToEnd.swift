// A whole embedding, with real machine code: an entry trampoline and two
// "wasm" functions assembled by hand into executable memory, registered,
// called inside an activation; the inner function records its exit and
// calls the host, which takes a backtrace; then it traps (`ud2`), and a
// SIGILL handler asks the signal-safe code map whether the pc is wasm,
// walks into a preallocated buffer and jumps back to the host, which
// symbolicates what the handler found. x86_64 Linux.
import Glibc
import WasmUnwind

// snippet.show
// The machine code. Every function keeps a frame pointer (push rbp; mov
// rbp, rsp); the entry trampoline stores its rbp as the entry fp; the inner
// function stores its rbp and the precise return address of its host call
// as the exit fp and pc, as an exit trampoline would.
struct Assembly {
    var bytes: [UInt8] = []
    var offset: Int { bytes.count }
    mutating func emit(_ more: UInt8...) { bytes += more }
    mutating func call(_ target: Int) {  // call rel32
        emit(0xE8)
        bytes += withUnsafeBytes(of: Int32(target - (offset + 4)).littleEndian, Array.init)
    }
    mutating func pad(to target: Int) { bytes += [UInt8](repeating: 0xCC, count: target - offset) }
}
var code = Assembly()
let entry = 0x00, outer = 0x40, inner = 0x60
code.emit(0x55, 0x48, 0x89, 0xE5)                     // entry: push rbp; mov rbp, rsp
code.emit(0x48, 0x89, 0x6F, 0x18)                     //   mov [rdi + 24], rbp   (entry fp; rdi = limits)
code.emit(0x57, 0x48, 0x83, 0xEC, 0x08)               //   push rdi; sub rsp, 8
code.call(outer)                                      //   call outer
code.emit(0x48, 0x83, 0xC4, 0x08, 0x5F)               //   add rsp, 8; pop rdi
code.emit(0x48, 0xC7, 0x47, 0x08, 0, 0, 0, 0)         //   mov qword [rdi + 8], 0   (no exit on return)
code.emit(0x48, 0xC7, 0x47, 0x10, 0, 0, 0, 0)         //   mov qword [rdi + 16], 0
code.emit(0x5D, 0xC3)                                 //   pop rbp; ret
code.pad(to: outer)
code.emit(0x55, 0x48, 0x89, 0xE5)                     // outer: push rbp; mov rbp, rsp
let outerCall = code.offset - outer
code.call(inner)                                      //   call inner
code.emit(0x5D, 0xC3)                                 //   pop rbp; ret
code.pad(to: inner)
code.emit(0x55, 0x48, 0x89, 0xE5)                     // inner: push rbp; mov rbp, rsp
code.emit(0x57, 0x48, 0x83, 0xEC, 0x08)               //   push rdi; sub rsp, 8
code.emit(0x48, 0x89, 0x6F, 0x08)                     //   mov [rdi + 8], rbp       (exit fp)
code.emit(0x48, 0x8D, 0x05, 14, 0, 0, 0)              //   lea rax, [rip + 14]      (exit pc: after the call)
code.emit(0x48, 0x89, 0x47, 0x10)                     //   mov [rdi + 16], rax
let innerCall = code.offset - inner
code.emit(0x48, 0xB8); let hostSlot = code.offset     //   mov rax, host
code.emit(0, 0, 0, 0, 0, 0, 0, 0)
code.emit(0xFF, 0xD0)                                 //   call rax
code.emit(0x48, 0x83, 0xC4, 0x08, 0x5F)               //   add rsp, 8; pop rdi
let innerTrap = code.offset - inner
code.emit(0x0F, 0x0B)                                 //   ud2: the trap
code.emit(0x5D, 0xC3)                                 //   pop rbp; ret
let innerEnd = code.offset - inner

// Executable memory: written, then made read-only and executable.
let size = 4096
let memory = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
let base = UInt(bitPattern: memory)

// The registry, publishing to a map a signal handler can read. Functions
// and stubs are offsets from the module's base; address-map native offsets
// from the function's start; wasm offsets are the module binary's.
let map = SignalSafeCodeMap()
var registry = CodeRegistry(publishingTo: map)
try registry.register(CodeModule(name: "demo", codeRange: base..<(base + UInt(size)), functions: [
    CodeFunction(index: 1, name: "outer", codeRange: UInt(outer)..<UInt(inner), bodyOffset: 0x20, addressMap: [
        AddressMapEntry(nativeOffset: 0, wasmOffset: 0x20),
        AddressMapEntry(nativeOffset: UInt32(outerCall), wasmOffset: 0x22),  // the call to inner
    ]),
    CodeFunction(index: 2, name: "inner", codeRange: UInt(inner)..<UInt(inner + innerEnd), bodyOffset: 0x30, addressMap: [
        AddressMapEntry(nativeOffset: 0, wasmOffset: 0x30),
        AddressMapEntry(nativeOffset: UInt32(innerCall), wasmOffset: 0x33),  // the host call
        AddressMapEntry(nativeOffset: UInt32(innerTrap), wasmOffset: 0x35),  // unreachable
    ]),
], stubs: [CodeStub(kind: .entryTrampoline, codeRange: UInt(entry)..<UInt(outer))]))

// What the signal handler reads: plain memory, set up before it can run.
let limits = RuntimeLimits()
let limitsAddress = limits.address
nonisolated(unsafe) let codeMap = map.handle
nonisolated(unsafe) let trapFrames = UnsafeMutableBufferPointer<Frame>.allocate(capacity: 1024)
nonisolated(unsafe) var trapWalk = WalkResult(count: 0, isComplete: true)
_ = Backtrace.walk(limitsAddress: limitsAddress, into: trapFrames)  // the walker's metadata, made now

// The host function inner calls: a backtrace of the live stack.
let host: @convention(c) () -> Void = {
    print("at the host call:\n\(registry.symbolicate(Backtrace.capture(limits)))")
}
withUnsafeBytes(of: unsafeBitCast(host, to: UInt.self)) { code.bytes.replaceSubrange(hostSlot..<hostSlot + 8, with: $0) }
code.bytes.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
mprotect(memory, size, PROT_READ | PROT_EXEC)

// The trap handler: a wasm pc is a trap (walk, then jump back to the
// activation); anything else is a host crash, handed on.
var action = sigaction()
action.__sigaction_handler.sa_sigaction = { signal, _, context in
    let registers = TrapRegisters(signalContext: context!)
    guard SignalSafeCodeMap.kind(at: registers.pc, in: codeMap) == .wasmFunction, let activation = Activation.current else {
        Glibc.signal(signal, SIG_DFL)  // not a wasm trap: crash as the system would
        return
    }
    trapWalk = Backtrace.walk(limitsAddress: limitsAddress, trap: registers, into: trapFrames)
    activation.jump(1)
}
action.sa_flags = SA_SIGINFO
sigaction(SIGILL, &action, nil)

// The call: an activation, a jump target, the entry trampoline.
let outcome = Activation.enter(limits) { activation in
    activation.callWithJumpTarget({ entryAddress in
        typealias Entry = @convention(c) (UInt) -> Void
        unsafeBitCast(entryAddress, to: Entry.self)(limitsAddress)
    }, context: UnsafeMutableRawPointer(bitPattern: base + UInt(entry)))
}
// Back on the host: symbolicate what the handler found.
if outcome != 0 {
    let frames = UnsafeBufferPointer(rebasing: trapFrames[..<trapWalk.count])
    print("trapped:\n\(registry.symbolicate(frames, error: trapWalk.error))")
}
// snippet.end
