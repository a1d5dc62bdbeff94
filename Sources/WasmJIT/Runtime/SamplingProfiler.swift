import Glibc
import CWasmUnwindABI
import WasmUnwind
import UnwindReports
import CWasmRuntime

/// A sampling profiler for wasm running on the calling thread: a timer
/// (`timer_create` on `CLOCK_MONOTONIC` or the thread's CPU-time clock,
/// delivered to this thread with `SIGEV_THREAD_ID`) sends SIGPROF; the
/// handler walks the wasm frames from the interrupted instruction — any
/// instruction: a prologue before `rbp` is set, a `ret` after it was
/// restored, an entry or exit trampoline, host code between activations —
/// into preallocated memory, without locks or allocation. The samples are
/// read after `run` returns.
///
/// Where the interrupted pc is in a module's code, the module's frame-state
/// table (built from the same frame events as its CFI) says where that
/// instruction's return address is; in host code, the activation records
/// say which wasm frames are below.
public final class SamplingProfiler {
    /// Where a sample's pc was.
    public enum Landing: String, CaseIterable, Hashable, Sendable {
        case host, prologue, body, epilogue
        case entryTrampoline = "entry trampoline"
        case exitTrampoline = "exit trampoline"
        /// In a signal handler running on an alternate signal stack (its sp
        /// is off the thread's stack): what it interrupted is not known
        /// from the records, so the sample has no wasm frames and is not
        /// compared with libunwind (which unwinds through the signal frame).
        case signalHandler = "signal handler"
    }

    /// One sample: its wasm frames, newest first (the addresses of the
    /// frames that lie in wasm functions), and where the pc was.
    public struct Sample: Hashable, Sendable {
        /// The interrupted pc.
        public var pc: UInt
        /// The wasm frames' addresses, newest first: the first is the
        /// interrupted pc when `startsAtPC`, every other a return address.
        public var frames: [UInt]
        public var startsAtPC: Bool
        public var landing: Landing
        /// What libunwind found from the same signal context, filtered the
        /// same way, when the profiler was given a second unwinder (nil when
        /// it had none, or could not run for this sample).
        @_spi(Testing) public var secondOpinion: [UInt]?
        /// Whether our walk broke a rule and stopped early.
        public var walkFailed: Bool
        /// Whether our walk, or the second unwinder, filled its
        /// `maximumDepth` frames before reaching the oldest frame.
        public var isTruncated: Bool
        @_spi(Testing) public var isSecondOpinionTruncated: Bool

        /// Whether the second unwinder found the same wasm frames (nil
        /// without one). When either stopped at the depth limit, the
        /// shorter list must begin the longer one.
        @_spi(Testing) public var agreesWithSecondOpinion: Bool? {
            guard let second = secondOpinion else { return nil }
            if walkFailed { return false }
            if !isTruncated && !isSecondOpinionTruncated { return frames == second }
            let common = min(frames.count, second.count)
            return frames.prefix(common) == second.prefix(common)
                && (isTruncated || frames.count >= second.count) && (isSecondOpinionTruncated || second.count >= frames.count)
        }
    }

    /// A second unwinder run in the handler on the same signal context
    /// (`ucontext_t *`): writes instruction pointers, newest first, returns
    /// how many (or a negative number if it could not unwind). For tests:
    /// libunwind is not async-signal-safe in general.
    @_spi(Testing) public typealias SignalContextUnwinder = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt64>?, Int32) -> Int32

    private let store: Store
    private let ring: SampleRing
    private var interval: UInt64 = 0

    /// A profiler of `store`'s wasm on the thread that calls `run`, with room
    /// for `capacity` samples of at most `maximumDepth` frames.
    public convenience init(store: Store, capacity: Int = 100_000, maximumDepth: Int = 256) {
        self.init(store: store, capacity: capacity, maximumDepth: maximumDepth, secondOpinion: nil)
    }

    /// A profiler that also runs `secondOpinion` on each sample's signal
    /// context, to check the walk against it (verification only).
    @_spi(Testing) public init(store: Store, capacity: Int = 100_000, maximumDepth: Int = 256,
                               secondOpinion: SignalContextUnwinder?) {
        self.store = store
        ring = SampleRing(capacity: capacity, maximumDepth: maximumDepth, secondOpinion: secondOpinion)
    }

    deinit { ring.deallocate() }

    /// What the sampling interval counts.
    public enum Clock: Sendable {
        /// The thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`): samples only
        /// while it runs, but the kernel fires these timers at its tick
        /// (250 Hz on a `CONFIG_HZ=250` kernel) whatever the interval.
        case threadCPUTime
        /// Wall time (`CLOCK_MONOTONIC`, a high-resolution timer): any rate;
        /// for a thread busy in the profiled code the same as CPU time.
        case monotonic

        var id: Int32 {
            switch self {
            case .threadCPUTime: return CLOCK_THREAD_CPUTIME_ID
            case .monotonic: return CLOCK_MONOTONIC
            }
        }
    }

    /// Runs `body` on the calling thread with a sample every `interval`
    /// nanoseconds of `clock`.
    public func run<Result>(intervalNanoseconds: UInt64, clock: Clock = .monotonic,
                            _ body: () throws -> Result) throws -> Result {
        // Walk once outside the handler: the walker's generic metadata is
        // instantiated here, not in the signal handler.
        ring.warmUp(limitsAddress: store.limits.address)
        interval = intervalNanoseconds
        var status = wu_sampler_attach(sampleHandler, ring.raw)
        guard status != EBUSY else { throw SamplerError.threadAlreadyProfiled }
        guard status == 0 else { throw SamplerError.system("sigaction(SIGPROF)", status) }
        var timer: UInt64 = 0
        status = wu_sampler_start(clock.id, intervalNanoseconds, &timer)
        guard status == 0 else {
            _ = wu_sampler_detach()
            throw SamplerError.system("timer_create", status)
        }
        defer {
            _ = wu_sampler_stop(timer)
            _ = wu_sampler_detach()
        }
        return try body()
    }

    /// Samples the handler could not store (the buffer, or the table of
    /// distinct stacks, was full).
    public var droppedSamples: Int { ring.dropped }

    /// How many samples were stored so far (cheap: nothing is resolved).
    public var sampleCount: Int { ring.count }

    /// The distinct stacks among them (each kept once), and the bytes the
    /// samples take in all: 32 per sample, and each distinct stack once.
    public var distinctStacks: Int { ring.distinctStacks }
    public var bytesUsed: Int { ring.bytesUsed }

    /// The samples taken so far, resolved against the store's code (frames
    /// of another store's code, if one ran on this thread, are left out).
    public var samples: [Sample] {
        let registry = store.registry
        func isWasm(_ address: UInt, isPC: Bool) -> Bool {
            registry.kind(at: isPC ? address : address - 1) == .wasmFunction
        }
        return (0..<ring.count).map { index in
            let record = ring.record(index)
            let ours = record.frames.enumerated().filter { isWasm($0.element, isPC: $0.offset == 0 && record.startsAtPC) }
                .map(\.element)
            let second = record.state == SampleRing.otherStackState ? nil : record.secondOpinion.map { ips in
                ips.enumerated().filter { isWasm($0.element, isPC: $0.offset == 0) }.map(\.element)
            }
            return Sample(pc: record.pc, frames: ours, startsAtPC: record.startsAtPC && ours.first == record.frames.first,
                          landing: Self.landing(state: record.state, pc: record.pc, registry: registry),
                          secondOpinion: second, walkFailed: record.walkFailed, isTruncated: record.isTruncated,
                          isSecondOpinionTruncated: record.secondOpinion?.count == ring.depth)
        }
    }

    static func landing(state: UInt8, pc: UInt, registry: CodeRegistry) -> Landing {
        guard state != SampleRing.hostState else { return .host }
        guard state != SampleRing.otherStackState else { return .signalHandler }
        if state & UInt8(WU_FRAME_IN_ENTRY_TRAMPOLINE) != 0 { return .entryTrampoline }
        if registry.kind(at: pc) != .wasmFunction { return .exitTrampoline }
        switch UInt32(state) {
        case WU_FRAME_AT_ENTRY.rawValue, WU_FRAME_PUSHED.rawValue: return .prologue
        case WU_FRAME_AT_RETURN.rawValue: return .epilogue
        default: return .body
        }
    }

    /// The samples aggregated by stack: wasm frames by their backtrace
    /// names (`module!function`), oldest first; a sample without wasm
    /// frames counts as one host frame, `[host]`.
    public var profile: Profile { profile(lines: false) }

    /// The profile; with `lines`, each wasm frame of a module with DWARF
    /// becomes its functions — the wasm function, then each function
    /// inlined at the sampled instruction — each labelled with its source
    /// line: `leaf (t.c:3)`.
    public func profile(lines: Bool) -> Profile {
        let registry = store.registry
        let host = [Profile.Frame(name: "[host]", isWasm: false)]
        var cache: [FrameAddress: [Profile.Frame]] = [:]
        func frames(_ frame: FrameAddress) -> [Profile.Frame] {
            if let known = cache[frame] { return known }
            let symbol = registry.symbol(for: frame)
            var result = [Profile.Frame(name: symbol?.printedName ?? "<unknown>", isWasm: true)]
            if lines, let offset = symbol?.moduleOffset,
               let info = SourceLineRegistry.shared.module(containing: frame.rawValue) ?? nil {
                let symbols = info.symbols(atModuleOffset: offset)
                if !symbols.isEmpty {
                    result = symbols.reversed().map { source in
                        let name = source.name.map(Demangling.demangle) ?? symbol?.printedName ?? "<unknown>"
                        let place = source.file.map { file in
                            " (" + (file.split(separator: "/").last.map(String.init) ?? file)
                                + (source.line.map { ":\($0)" } ?? "") + ")"
                        } ?? ""
                        return Profile.Frame(name: name + place, isWasm: true, file: source.file, line: source.line,
                                             column: source.column)
                    }
                }
            }
            cache[frame] = result
            return result
        }
        let stacks = samples.map { sample -> [Profile.Frame] in
            guard !sample.frames.isEmpty else { return host }
            return sample.frames.enumerated().reversed().flatMap { index, address in
                frames(index == 0 && sample.startsAtPC ? .programCounter(address) : .returnAddress(address))
            }
        }
        return Profile(samples: stacks, intervalNanoseconds: interval)
    }
}

/// Why the sampler could not start.
public enum SamplerError: Error, CustomStringConvertible {
    case system(String, Int32)
    /// Another profiler samples this thread already (one per thread;
    /// profilers of different threads run at once).
    case threadAlreadyProfiled

    public var description: String {
        switch self {
        case .system(let call, let code): return "\(call) failed: \(String(cString: strerror(code)))"
        case .threadAlreadyProfiled: return "another profiler is sampling this thread"
        }
    }
}

/// The SIGPROF callback: everything it touches is plain memory.
private let sampleHandler: wu_sample_callback = { pc, fp, sp, ucontext, context in
    guard let context else { return }
    SampleRing(raw: context).take(pc: UInt(pc), fp: UInt(fp), sp: UInt(sp), ucontext: ucontext)
}

/// The preallocated memory the signal handler writes samples into, and the
/// only code of the profiler that reads and writes it through pointers.
///
/// Stacks are interned as they are taken: a sample is four words, and each
/// distinct stack is kept once (most samples repeat a few stacks), so a
/// million samples cost 32 MB plus their distinct stacks, not a full-depth
/// frame array each.
///
/// Layout (64-bit words): a header; `capacity` records of `[pc, state |
/// startsAtPC << 8 | walkFailed << 9 | truncated << 10, stack, second
/// stack]` (a stack is its pool offset + 1; 0 is none); a hash table of
/// `tableSlots` stack references (pool offset + 1, 0 empty); the pool of
/// stacks, each `[hash, count, frames...]`; and two scratch buffers of
/// `depth` words. Only the sampled thread writes, and only while `run`
/// runs; readers read after it.
struct SampleRing {
    static let hostState: UInt8 = 0xFF
    /// Host code on another stack than the thread's: a signal handler on
    /// an alternate stack.
    static let otherStackState: UInt8 = 0xFE
    private enum Header: Int {
        case capacity, depth, count, dropped, frameBuffer, secondOpinion, stackLow, stackHigh
        case tableSlots, poolWords, poolUsed, distinct, byteCount
        static let size = 14
    }
    static let recordWords = 4

    // SAFETY: one mmap'd region (header, records, interned frames), made in
    // init and unmapped in `deallocate`, after the timer is gone and no
    // handler can run; the handler writes only this thread's ring, the
    // reader reads it only after `run` stopped the timer.
    let raw: UnsafeMutableRawPointer
    private var words: UnsafeMutablePointer<UInt64> { raw.assumingMemoryBound(to: UInt64.self) }

    init(raw: UnsafeMutableRawPointer) { self.raw = raw }

    /// Room for `capacity` samples of at most `maximumDepth` frames and
    /// `distinctStacks` distinct stacks of `averageDepth` frames.
    init(capacity: Int, maximumDepth: Int, secondOpinion: SamplingProfiler.SignalContextUnwinder?,
         distinctStacks: Int = 65_536, averageDepth: Int = 64) {
        var slots = 16
        while slots < 2 * distinctStacks { slots *= 2 }
        let poolWords = distinctStacks * (2 + averageDepth) + 2 * (2 + maximumDepth)
        let totalWords = Header.size + capacity * Self.recordWords + slots + poolWords + 2 * maximumDepth
        // Zero pages from the kernel, touched only as samples are written:
        // a large capacity costs address space, not memory.
        let byteCount = 8 * totalWords
        guard let mapping = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              mapping != MAP_FAILED else {
            fatalError("cannot reserve \(byteCount) bytes for samples: \(String(cString: strerror(errno)))")
        }
        raw = mapping
        let words = raw.assumingMemoryBound(to: UInt64.self)
        words[Header.byteCount.rawValue] = UInt64(byteCount)
        words[Header.capacity.rawValue] = UInt64(capacity)
        words[Header.depth.rawValue] = UInt64(maximumDepth)
        words[Header.tableSlots.rawValue] = UInt64(slots)
        words[Header.poolWords.rawValue] = UInt64(poolWords)
        let frames = UnsafeMutablePointer<Frame>.allocate(capacity: maximumDepth)
        words[Header.frameBuffer.rawValue] = UInt64(UInt(bitPattern: frames))
        words[Header.secondOpinion.rawValue] = secondOpinion.map { UInt64(UInt(bitPattern: unsafeBitCast($0, to: UnsafeRawPointer.self))) } ?? 0
    }

    func deallocate() {
        UnsafeMutablePointer<Frame>(bitPattern: UInt(words[Header.frameBuffer.rawValue]))?.deallocate()
        munmap(raw, Int(words[Header.byteCount.rawValue]))
    }

    var capacity: Int { Int(words[Header.capacity.rawValue]) }
    var depth: Int { Int(words[Header.depth.rawValue]) }
    var count: Int { Int(words[Header.count.rawValue]) }
    var dropped: Int { Int(words[Header.dropped.rawValue]) }
    /// Distinct stacks kept, and the bytes the samples take.
    var distinctStacks: Int { Int(words[Header.distinct.rawValue]) }
    var bytesUsed: Int { 8 * (count * Self.recordWords + Int(words[Header.poolUsed.rawValue])) }
    private var tableSlots: Int { Int(words[Header.tableSlots.rawValue]) }
    private var records: UnsafeMutablePointer<UInt64> { words + Header.size }
    private var table: UnsafeMutablePointer<UInt64> { records + capacity * Self.recordWords }
    private var pool: UnsafeMutablePointer<UInt64> { table + tableSlots }
    private var poolWords: Int { Int(words[Header.poolWords.rawValue]) }
    /// Where a sample's frames are gathered before they are interned.
    private var scratch: UnsafeMutablePointer<UInt64> { pool + poolWords }
    private var secondScratch: UnsafeMutablePointer<UInt64> { scratch + depth }
    private var frameBuffer: UnsafeMutableBufferPointer<Frame> {
        UnsafeMutableBufferPointer(start: UnsafeMutablePointer(bitPattern: UInt(words[Header.frameBuffer.rawValue])), count: depth)
    }

    /// On the thread to be sampled: notes its stack, and walks once outside
    /// the handler (the result is discarded).
    func warmUp(limitsAddress: UInt) {
        let stack = ThreadStack.current()
        words[Header.stackLow.rawValue] = UInt64(stack.lowerBound)
        words[Header.stackHigh.rawValue] = UInt64(stack.upperBound)
        _ = Backtrace.walk(limitsAddress: limitsAddress, interrupted: .noWasmFrame, into: frameBuffer)
    }

    /// The reference (pool offset + 1) of the stack `frames[0..<count]`,
    /// kept once: an equal stack already in the pool, or a new entry. 0 if
    /// the table or the pool is full. Plain loads and stores only.
    private func intern(_ frames: UnsafeMutablePointer<UInt64>, _ count: Int) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(count)
        var index = 0
        while index < count {
            hash = (hash ^ frames[index]) &* 0x0000_0100_0000_01B3
            index &+= 1
        }
        let mask = tableSlots &- 1
        var slot = Int(truncatingIfNeeded: hash >> 17) & mask
        var probes = 0
        while probes < tableSlots {
            let entry = table[slot]
            if entry == 0 { break }
            let stack = pool + Int(entry &- 1)
            if stack[0] == hash && stack[1] == UInt64(count) {
                var same = true
                index = 0
                while index < count {
                    if stack[2 &+ index] != frames[index] { same = false; break }
                    index &+= 1
                }
                if same { return entry }
            }
            slot = (slot &+ 1) & mask
            probes &+= 1
        }
        let used = Int(words[Header.poolUsed.rawValue])
        guard probes < tableSlots, used + 2 + count <= poolWords, 2 * (Int(words[Header.distinct.rawValue]) + 1) <= tableSlots else {
            return 0
        }
        let stack = pool + used
        stack[0] = hash
        stack[1] = UInt64(count)
        index = 0
        while index < count {
            stack[2 &+ index] = frames[index]
            index &+= 1
        }
        words[Header.poolUsed.rawValue] = UInt64(used + 2 + count)
        words[Header.distinct.rawValue] &+= 1
        table[slot] = UInt64(used) &+ 1
        return UInt64(used) &+ 1
    }

    /// The handler's work: find how the interrupted frame looks, walk, store.
    func take(pc: UInt, fp: UInt, sp: UInt, ucontext: UnsafeMutableRawPointer?) {
        let index = count
        guard index < capacity else {
            words[Header.dropped.rawValue] &+= 1
            return
        }
        var state = Self.hostState
        var startsAtPC = false
        var frameCount = 0
        var walkFailed = false
        var truncated = false
        let onThreadStack = UInt64(sp) >= words[Header.stackLow.rawValue] && UInt64(sp) < words[Header.stackHigh.rawValue]
        if let info = Self.newestStore(), Self.frameState(info.pointee, pc: pc) == nil, !onThreadStack {
            // Host code on an alternate signal stack: a handler interrupted
            // the thread somewhere, and the exit record may be one a call
            // that already returned left behind. Nothing is walked.
            state = Self.otherStackState
        } else if let info = Self.newestStore(), let limits = info.pointee.limits {
            var interrupted = InterruptedCode.host(sp: sp)
            var prefix: UInt? = nil
            if let found = Self.frameState(info.pointee, pc: pc) {
                state = found
                if found & UInt8(WU_FRAME_IN_ENTRY_TRAMPOLINE) != 0 {
                    interrupted = .noWasmFrame
                } else {
                    switch UInt32(found) {
                    case WU_FRAME_ESTABLISHED.rawValue:
                        interrupted = .wasm(TrapRegisters(pc: pc, fp: fp, sp: sp))
                    // SAFETY (both cases): the frame state says where the
                    // return address is relative to sp on this thread's
                    // own stack, in a frame still being built or torn down.
                    case WU_FRAME_AT_ENTRY.rawValue, WU_FRAME_AT_RETURN.rawValue:
                        prefix = pc
                        interrupted = .wasm(TrapRegisters(pc: UnsafePointer<UInt>(bitPattern: sp)!.pointee, fp: fp, sp: sp + 8))
                    case WU_FRAME_PUSHED.rawValue:
                        prefix = pc
                        interrupted = .wasm(TrapRegisters(pc: UnsafePointer<UInt>(bitPattern: sp + 8)!.pointee, fp: fp, sp: sp + 16))
                    default:
                        interrupted = .noWasmFrame
                    }
                }
                startsAtPC = true
            }
            let frames = UnsafeMutablePointer<Frame>(bitPattern: UInt(words[Header.frameBuffer.rawValue]))!
            if let prefix {
                scratch[0] = UInt64(prefix)
                frameCount = 1
            }
            let buffer = UnsafeMutableBufferPointer(start: frames, count: depth - frameCount)
            let result = Backtrace.walk(limitsAddress: UInt(bitPattern: limits), interrupted: interrupted, into: buffer)
            walkFailed = result.error != nil
            truncated = !result.isComplete && result.error == nil
            var index = 0
            while index < result.count {
                scratch[frameCount] = UInt64(frames[index].address.rawValue)
                frameCount += 1
                index += 1
            }
        }
        let stack = intern(scratch, frameCount)
        var second: UInt64 = 0
        // SAFETY: the word holds the @convention(c) function given to init
        // (verification only), cast back to its own type.
        if words[Header.secondOpinion.rawValue] != 0, let ucontext {
            let unwinder = unsafeBitCast(UnsafeRawPointer(bitPattern: UInt(words[Header.secondOpinion.rawValue]))!,
                                         to: SamplingProfiler.SignalContextUnwinder.self)
            let found = unwinder(ucontext, secondScratch, Int32(depth))
            // 0 when it could not unwind (or the pool is full): unchecked.
            if found >= 0 { second = intern(secondScratch, Int(found)) }
        }
        // A full table or pool drops the sample (counted).
        guard stack != 0 else {
            words[Header.dropped.rawValue] &+= 1
            return
        }
        let record = records + index * Self.recordWords
        record[0] = UInt64(pc)
        record[1] = UInt64(state) | (startsAtPC ? 1 << 8 : 0) | (walkFailed ? 1 << 9 : 0) | (truncated ? 1 << 10 : 0)
        record[2] = stack
        record[3] = second
        words[Header.count.rawValue] = UInt64(index + 1)
    }

    /// The store of the newest activation that has finished entering (set
    /// its trap context): one still entering has not, and has no wasm
    /// frames yet, but older ones may.
    static func newestStore() -> UnsafeMutablePointer<wu_store_trap_info>? {
        var activation = wu_current_activation()
        var visited = 0
        while let current = activation, visited < WalkLimits.default.maximumActivations {
            if current.pointee.jump_buffer != nil, let context = current.pointee.embedder_context {
                return context.assumingMemoryBound(to: wu_store_trap_info.self)
            }
            visited += 1
            // Older records lie at higher addresses; anything else is corrupt.
            guard let older = current.pointee.older, UInt(bitPattern: older) > UInt(bitPattern: current) else { return nil }
            activation = older
        }
        return nil
    }

    /// The frame state at `pc` if it lies in the store's code.
    static func frameState(_ info: wu_store_trap_info, pc: UInt) -> UInt8? {
        guard let regions = info.regions else { return nil }
        var low = 0, high = Int(info.region_count)
        while low < high {
            let middle = (low + high) / 2
            if regions[middle].end <= UInt64(pc) { low = middle + 1 } else { high = middle }
        }
        guard low < Int(info.region_count), regions[low].start <= UInt64(pc), let offsets = regions[low].frame_offsets,
              let states = regions[low].frame_states else { return nil }
        let offset = UInt32(UInt64(pc) - regions[low].start)
        // The last transition at or before the offset.
        var first = 0, last = Int(regions[low].frame_count)
        while first < last {
            let middle = (first + last) / 2
            if offsets[middle] <= offset { first = middle + 1 } else { last = middle }
        }
        return first == 0 ? nil : states[first - 1]
    }

    /// A stored sample, read back after sampling.
    struct Record {
        var pc: UInt
        var state: UInt8
        var startsAtPC: Bool
        var walkFailed: Bool
        var isTruncated: Bool
        var frames: [UInt]
        var secondOpinion: [UInt]?
    }

    func record(_ index: Int) -> Record {
        let base = records + index * Self.recordWords
        let flags = base[1]
        func frames(_ reference: UInt64) -> [UInt]? {
            guard reference != 0 else { return nil }
            let stack = pool + Int(reference - 1)
            return (0..<Int(stack[1])).map { UInt(stack[2 + $0]) }
        }
        return Record(pc: UInt(base[0]), state: UInt8(truncatingIfNeeded: flags), startsAtPC: flags & (1 << 8) != 0,
                      walkFailed: flags & (1 << 9) != 0, isTruncated: flags & (1 << 10) != 0, frames: frames(base[2]) ?? [],
                      secondOpinion: frames(base[3]))
    }
}
