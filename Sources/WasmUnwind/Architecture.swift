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
/// loop; adding an architecture is adding a conformance.
public protocol FrameArchitecture {
    /// A short name used in captures and messages (`x86_64`, `aarch64`).
    static var name: String { get }
    /// Byte offset from a frame pointer to the saved caller frame pointer.
    static var olderFramePointerOffset: UInt { get }
    /// Byte offset from a frame pointer to the return address.
    static var returnAddressOffset: UInt { get }
    /// Every frame pointer inside wasm code is a multiple of this.
    static var framePointerAlignment: UInt { get }
    /// Removes anything that is not address bits from a stored return
    /// address (pointer-authentication codes on aarch64).
    static func strippingPointerAuthentication(_ returnAddress: UInt) -> UInt
}

/// x86_64 System V: `push rbp; mov rbp, rsp` leaves the caller's rbp at
/// `[rbp]` and the return address the `call` pushed at `[rbp + 8]`. Wasm
/// frames keep rsp 16-byte aligned at calls, so rbp is 16-byte aligned.
public enum X86_64: FrameArchitecture {
    public static var name: String { "x86_64" }
    @inlinable public static var olderFramePointerOffset: UInt { 0 }
    @inlinable public static var returnAddressOffset: UInt { 8 }
    @inlinable public static var framePointerAlignment: UInt { 16 }
    @inlinable
    public static func strippingPointerAuthentication(_ returnAddress: UInt) -> UInt {
        returnAddress
    }
}

/// AArch64 AAPCS64: `stp x29, x30, [sp, #-16]!; mov x29, sp` leaves the
/// frame record {x29, x30} at `[x29]`. Return addresses may carry a
/// pointer-authentication code in their top bits, which are cleared here
/// (user-space addresses on Linux use at most 48 bits).
public enum AArch64: FrameArchitecture {
    public static var name: String { "aarch64" }
    @inlinable public static var olderFramePointerOffset: UInt { 0 }
    @inlinable public static var returnAddressOffset: UInt { 8 }
    @inlinable public static var framePointerAlignment: UInt { 16 }
    @inlinable
    public static func strippingPointerAuthentication(_ returnAddress: UInt) -> UInt {
        returnAddress & 0x0000_FFFF_FFFF_FFFF
    }
}

#if arch(x86_64)
/// The architecture this process runs on.
public typealias NativeArchitecture = X86_64
#elseif arch(arm64)
/// The architecture this process runs on.
public typealias NativeArchitecture = AArch64
#endif
