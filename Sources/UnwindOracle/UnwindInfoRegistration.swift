import CUnwindShim

/// JIT code's DWARF CFI registered with libunwind's dynamic registration
/// (`_U_dyn_register`, `UNW_INFO_FORMAT_REMOTE_TABLE`) for as long as this
/// object lives; `deinit` cancels it (`_U_dyn_cancel`).
///
/// Without it, libunwind's x86_64 `unw_step` meets JIT code with no CFI and
/// falls back to guessing an rbp chain, which silently stops early on deep
/// stacks: a comparison against that is not an oracle.
public final class UnwindInfoRegistration: @unchecked Sendable {
    private let handle: UnsafeMutableRawPointer

    /// Registers the CFI of code in `codeRange`: a search table of
    /// `searchTableEntries` sorted int32 pairs (code start - segment base,
    /// FDE address - segment base) at `searchTable`. The table and the FDEs
    /// must stay mapped while registered.
    public init(codeRange: Range<UInt>, segmentBase: UInt, searchTable: UInt, searchTableEntries: Int) throws {
        var table = wu_oracle_unwind_table(
            start: UInt64(codeRange.lowerBound), end: UInt64(codeRange.upperBound), segbase: UInt64(segmentBase),
            table: UInt64(searchTable), table_entries: UInt64(searchTableEntries))
        guard let handle = wu_oracle_register(&table) else { throw RegistrationError() }
        self.handle = handle
    }

    deinit { wu_oracle_unregister(handle) }

    struct RegistrationError: Error, CustomStringConvertible {
        var description: String { "cannot allocate libunwind's registration record" }
    }
}
