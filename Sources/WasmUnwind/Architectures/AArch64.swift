/// AArch64 AAPCS64: `stp x29, x30, [sp, #-16]!; mov x29, sp` leaves the
/// frame record {x29, x30} at `[x29]`. Return addresses may carry a
/// pointer-authentication code in their top bits, which are cleared here
/// (user-space addresses on Linux use at most 48 bits).
public enum AArch64: FrameArchitecture {
    public static var name: String { "aarch64" }
    @inlinable public static var olderFramePointerOffset: UInt { 0 }
    @inlinable public static var returnAddressOffset: UInt { 8 }
    @inlinable public static var framePointerAlignment: UInt { 16 }
    @inlinable public static var frameRecordSize: UInt { 16 }
    @inlinable
    public static func strippingPointerAuthentication(_ returnAddress: UInt) -> UInt {
        returnAddress & 0x0000_FFFF_FFFF_FFFF
    }

    /// The pc (32), x29 and sp (31); x0 ... x30 are 0-30.
    public static var dwarfProgramCounter: UInt8 { 32 }
    public static var dwarfFramePointer: UInt8 { 29 }
    public static var dwarfStackPointer: UInt8 { 31 }
    public static var dwarfMaximumRegister: UInt8 { 32 }
    public static var cfiRegisterCount: UInt64 { 97 }
    /// EM_AARCH64.
    public static var elfMachine: UInt16 { 183 }
    public static var captureCode: UInt8 { 2 }
}
