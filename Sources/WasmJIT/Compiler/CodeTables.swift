import CWasmRuntime

/// Every trap site's code offset, sorted, and its trap code with flags
/// (`WU_TRAP_SITE_*`): plain memory the signal handler reads
/// (`wu_code_region`), owned here and freed with the module.
final class TrapSiteTable: @unchecked Sendable {
    // SAFETY: allocated in init for `count` entries (at least one, so the
    // pointers are never null), initialized there, never written again,
    // freed in deinit; the handler reads them only while the module is
    // listed in its store's code regions, which the module outlives.
    let offsets: UnsafeMutableBufferPointer<UInt32>
    let codes: UnsafeMutableBufferPointer<UInt8>
    let count: Int

    init(_ functions: [CompiledFunction]) {
        let sites = functions.flatMap(\.trapSites).sorted { $0.codeOffset < $1.codeOffset }
        count = sites.count
        offsets = .allocate(capacity: max(1, count))
        codes = .allocate(capacity: max(1, count))
        for (index, site) in sites.enumerated() {
            offsets[index] = UInt32(site.codeOffset)
            codes[index] = site.code.rawValue | (site.carriesAddress ? UInt8(WU_TRAP_SITE_HAS_ADDRESS) : 0)
                | (site.isMemoryAccess ? UInt8(WU_TRAP_SITE_MEMORY_ACCESS) : 0)
        }
    }

    deinit {
        offsets.deallocate()
        codes.deallocate()
    }
}

/// Where each routine's frame changes (`wu_frame_state`), sorted by code
/// offset: what the sampling profiler's signal handler reads to know
/// whether a pc is in a prologue, a body, an epilogue or a trampoline.
final class FrameStateTable: @unchecked Sendable {
    // SAFETY: as `TrapSiteTable`'s: allocated and written in init only,
    // freed in deinit, read by the handler while the module is registered.
    let offsets: UnsafeMutableBufferPointer<UInt32>
    let states: UnsafeMutableBufferPointer<UInt8>
    let count: Int

    /// The transitions of `frames`; a routine that starts at an entry
    /// trampoline's offset is flagged `WU_FRAME_IN_ENTRY_TRAMPOLINE`.
    init(_ frames: [FrameDescription], entryTrampolineStarts: Set<Int>) {
        let transitions = frames.sorted { $0.codeRange.lowerBound < $1.codeRange.lowerBound }.flatMap { frame in
            let flag = entryTrampolineStarts.contains(frame.codeRange.lowerBound) ? UInt8(WU_FRAME_IN_ENTRY_TRAMPOLINE) : 0
            return frame.stateTransitions.map { (offset: $0.offset, state: UInt8($0.state.rawValue) | ($0.state == WU_FRAME_NONE ? 0 : flag)) }
        }
        offsets = .allocate(capacity: max(1, transitions.count))
        states = .allocate(capacity: max(1, transitions.count))
        var count = 0
        for transition in transitions {
            // A routine's start replaces the padding after the one before.
            if count > 0, offsets[count - 1] == UInt32(transition.offset) { count -= 1 }
            offsets[count] = UInt32(transition.offset)
            states[count] = transition.state
            count += 1
        }
        self.count = count
    }

    deinit {
        offsets.deallocate()
        states.deallocate()
    }
}
