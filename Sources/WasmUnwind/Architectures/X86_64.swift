/// x86_64 System V: `push rbp; mov rbp, rsp` leaves the caller's rbp at
/// `[rbp]` and the return address the `call` pushed at `[rbp + 8]`. Wasm
/// frames keep rsp 16-byte aligned at calls, so rbp is 16-byte aligned.
public enum X86_64: FrameArchitecture {
    public static var name: String { "x86_64" }
    @inlinable public static var olderFramePointerOffset: UInt { 0 }
    @inlinable public static var returnAddressOffset: UInt { 8 }
    @inlinable public static var framePointerAlignment: UInt { 16 }
    @inlinable public static var frameRecordSize: UInt { 16 }
    @inlinable
    public static func strippingPointerAuthentication(_ returnAddress: UInt) -> UInt {
        returnAddress
    }

    /// rip (the return-address column), rbp, rsp; rax ... r15 are 0-15.
    public static var dwarfProgramCounter: UInt8 { 16 }
    public static var dwarfFramePointer: UInt8 { 6 }
    public static var dwarfStackPointer: UInt8 { 7 }
    public static var dwarfMaximumRegister: UInt8 { 16 }
    public static var cfiRegisterCount: UInt64 { 17 }
    /// EM_X86_64.
    public static var elfMachine: UInt16 { 62 }
    public static var captureCode: UInt8 { 1 }
}
