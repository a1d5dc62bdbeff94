/// Where a frame-pointer frame keeps its links, per instruction set.
///
/// Every architecture we walk uses the same frame record shape: the frame
/// pointer points at a pair of words, the caller's frame pointer and the
/// return address into the caller.
///
/// ```
///   fp + returnAddressOffset -> return address into the caller
///   fp + olderFramePointerOffset -> caller's frame pointer
/// ```
///
/// The walker is generic over this protocol so the constants fold into the
/// loop; adding an architecture is adding a conformance (Architectures/).
public protocol FrameArchitecture {
    /// A short name used in captures and messages (`x86_64`, `aarch64`).
    static var name: String { get }
    /// Byte offset from a frame pointer to the saved caller frame pointer.
    static var olderFramePointerOffset: UInt { get }
    /// Byte offset from a frame pointer to the return address.
    static var returnAddressOffset: UInt { get }
    /// Every frame pointer inside wasm code is a multiple of this.
    static var framePointerAlignment: UInt { get }
    /// Bytes of a frame record (the saved frame pointer and the return
    /// address): the words the walker reads at a frame pointer.
    static var frameRecordSize: UInt { get }
    /// Removes anything that is not address bits from a stored return
    /// address (pointer-authentication codes on aarch64).
    static func strippingPointerAuthentication(_ returnAddress: UInt) -> UInt

    /// DWARF numbers of the registers a walk starts from (captures record
    /// them; an independent unwinder is seeded with them).
    static var dwarfProgramCounter: UInt8 { get }
    static var dwarfFramePointer: UInt8 { get }
    static var dwarfStackPointer: UInt8 { get }
    /// The highest DWARF number of a general register.
    static var dwarfMaximumRegister: UInt8 { get }
    /// DWARF registers an unwinder keeps per frame (libunwind: x86_64
    /// 0-16, aarch64 0-96): CFI naming any other is refused.
    static var cfiRegisterCount: UInt64 { get }
    /// `e_machine` of ELF files for this architecture (core files, the
    /// objects that describe JIT code to debuggers, jitdumps).
    static var elfMachine: UInt16 { get }
    /// The capture format's code for it (ARCH section).
    static var captureCode: UInt8 { get }
}

/// Every architecture the walker and the file readers know, one file each
/// under Architectures/: a port adds its conformance there and names it here.
public enum FrameArchitectures {
    public static var all: [any FrameArchitecture.Type] { [X86_64.self, AArch64.self] }

    /// The known architecture with capture code `code`, if any.
    public static func withCaptureCode(_ code: UInt8) -> (any FrameArchitecture.Type)? {
        all.first { $0.captureCode == code }
    }

    /// The known architecture with ELF machine `machine`, if any.
    public static func withELFMachine(_ machine: UInt16) -> (any FrameArchitecture.Type)? {
        all.first { $0.elfMachine == machine }
    }
}

#if arch(x86_64)
/// The architecture this process runs on.
public typealias NativeArchitecture = X86_64
#elseif arch(arm64)
/// The architecture this process runs on.
public typealias NativeArchitecture = AArch64
#endif
