import CWasmTools
import Glibc
@_spi(Tools) import WasmUnwind

/// Why a live process could not be read: it names the process and says
/// what to do where there is something to do.
public struct LiveProcessError: Error, CustomStringConvertible, Sendable {
    public var pid: Int32
    public var problem: String

    public init(pid: Int32, problem: String) {
        self.pid = pid
        self.problem = problem
    }

    public var description: String { "process \(pid): \(problem)" }
}

/// Another process's memory, read with `process_vm_readv` (no stop; the
/// kernel checks the same permission as for ptrace).
public struct LiveMemory: ProcessMemory {
    public let pid: Int32

    public init(pid: Int32) { self.pid = pid }

    public func bytes(at address: UInt, count: Int) -> [UInt8]? {
        try? read(at: address, count: count).get()
    }

    /// `count` bytes at `address`, or the errno that stopped the read (a
    /// short read, part of the range unmapped, is EFAULT).
    public func read(at address: UInt, count: Int) -> Result<[UInt8], Errno> {
        guard count > 0 else { return .success([]) }
        guard count <= 1 << 30, address <= UInt.max - UInt(count) else { return .failure(Errno(EFAULT)) }
        var result = [UInt8](repeating: 0, count: count)
        let done = result.withUnsafeMutableBytes { buffer -> Int in
            // SAFETY: the buffer is this array's own, `count` bytes long;
            // `address` is in the other process, which only the kernel reads
            // (and checks).
            wu_live_read(pid, UInt64(address), buffer.baseAddress, UInt64(count))
        }
        if done == count { return .success(result) }
        return .failure(Errno(done < 0 ? Int32(-done) : EFAULT))
    }

    /// An errno value, printed as the C library names it.
    public struct Errno: Error, Equatable, CustomStringConvertible, Sendable {
        public var code: Int32
        public init(_ code: Int32) { self.code = code }
        public var description: String { String(cString: strerror(code)) }
    }
}

/// How `LiveProcess` read one thread.
public enum LiveThreadRead: Hashable, Sendable {
    /// Interrupted with ptrace (`PTRACE_SEIZE` + `PTRACE_INTERRUPT`) for
    /// this long: registers and stack read, then resumed.
    case stopped(nanoseconds: UInt64)
    /// In a host call from wasm: its newest wasm frame is the exit it
    /// recorded, so it was read without being stopped.
    case hostCall

    public var description: String {
        switch self {
        case .stopped(let nanoseconds): return "stopped for \(max(1, nanoseconds / 1000)) µs"
        case .hostCall: return "in a host call, read from its exit record without stopping it"
        }
    }
}

/// A process as one read found it: the threads' registers, the bytes
/// copied while each was stopped, and the live memory for the rest.
public struct LiveSnapshot: ProcessImage {
    public let memory: LiveMemory
    public var threads: [ProcessThread]
    public var mappedFiles: [MappedFile]
    public var signal: ProcessSignal? { nil }
    /// What was copied while a thread was stopped (its stack and its
    /// activation state): read from here, not from the process, which has
    /// moved on.
    var copies: [CapturedMemoryReader.Segment]

    public func bytes(at address: UInt, count: Int) -> [UInt8]? {
        for copy in copies where address >= copy.baseAddress && address - copy.baseAddress <= UInt(copy.bytes.count)
            && UInt(count) <= UInt(copy.bytes.count) - (address - copy.baseAddress) {
            let start = Int(address - copy.baseAddress)
            return Array(copy.bytes[start..<(start + count)])
        }
        return memory.bytes(at: address, count: count)
    }
}

/// A running embedder of the runtime, read from outside: its post-mortem
/// descriptor (docs/post-mortem.md) found through its executable, its
/// threads' wasm stacks read without stopping it for longer than one
/// thread's registers and stack take (docs/live-processes.md).
///
/// Everything read is hostile and in motion: the descriptor's lists are
/// read under its generation protocol (an odd or changed generation is a
/// list in change: read again, bounded), and every thread stopped is
/// resumed before the read returns, whatever happens.
public final class LiveProcess {
    public let pid: Int32
    /// The program's path (`/proc/PID/exe`).
    public let program: String
    public let mappedFiles: [MappedFile]
    let descriptorAddress: UInt
    let images = PostMortem.ImageCache()
    let memory: LiveMemory

    /// Stop every thread, also those a host call lets us read unstopped
    /// (for a check that needs each thread stopped, as `--verify`).
    public var stopsEveryThread = false
    /// Called for each thread while it is stopped, with the listed modules
    /// (a second unwinder runs here, over the stopped thread); what it
    /// returns — the frames' addresses it found — is kept in the read.
    public var whileStopped: ((Int64, [CaptureFile.Module]) -> [UInt])?

    /// Attempts at a consistent read of the descriptor before giving up.
    public static let maximumAttempts = 10_000
    /// How long a thread may take to stop.
    public static let stopTimeoutMilliseconds: Int32 = 2000

    /// Finds the process's descriptor. Errors say why it cannot be read:
    /// no such process, no permission (and what to do), not an embedder.
    public init(pid: Int32) throws(LiveProcessError) {
        self.pid = pid
        memory = LiveMemory(pid: pid)
        guard pid > 0, kill(pid_t(pid), 0) == 0 || errno == EPERM else {
            throw LiveProcessError(pid: pid, problem: "no such process")
        }
        guard let exe = Self.readLink("/proc/\(pid)/exe") else {
            throw LiveProcessError(pid: pid, problem: "cannot read its program (/proc/\(pid)/exe): " + Self.permissionAdvice(pid))
        }
        // The program's file may have been replaced since it started:
        // /proc/PID/exe is always the one that runs.
        program = exe.hasSuffix(" (deleted)") ? "/proc/\(pid)/exe" : exe
        mappedFiles = Self.maps(pid)
        let probe = LiveSnapshot(memory: memory, threads: [], mappedFiles: mappedFiles, copies: [])
        do {
            descriptorAddress = try PostMortem.descriptorAddress(in: probe, executable: try InputBytes(path: program))
        } catch let error as CoreFileError {
            if error.problem.contains("has no symbol wasm_unwind_debug_descriptor") {
                throw LiveProcessError(pid: pid, problem: "\(exe) is not a program that embeds the WasmUnwind runtime "
                                       + "(it has no symbol wasm_unwind_debug_descriptor, or was stripped)")
            }
            throw LiveProcessError(pid: pid, problem: "\(error)")
        } catch {
            throw LiveProcessError(pid: pid, problem: "\(error)")
        }
        if case .failure(let error) = memory.read(at: descriptorAddress, count: 8) {
            if error.code == EPERM || error.code == EACCES {
                throw LiveProcessError(pid: pid, problem: "not permitted to read its memory: " + Self.permissionAdvice(pid))
            }
            if error.code == ESRCH { throw LiveProcessError(pid: pid, problem: "exited while it was read") }
            throw LiveProcessError(pid: pid, problem: "cannot read its descriptor at \(hex(descriptorAddress)): \(error)")
        }
    }

    /// One read of every thread running wasm, the threads sorted by id.
    public struct Read {
        public var snapshot: LiveSnapshot
        public var threads: [PostMortem.ThreadCapture]
        /// How each listed thread with wasm activations was read.
        public var reads: [Int64: LiveThreadRead]
        /// Reads of the descriptor that found it in change and were
        /// repeated (0: the first was consistent).
        public var retries: Int
        /// What `whileStopped` returned for each thread it ran for.
        public var whileStopped: [Int64: [UInt]] = [:]
    }

    /// Reads every thread the descriptor lists that is running wasm: a
    /// thread in a host call from its exit record (not stopped); any other
    /// stopped for the moment of reading its registers, activation state
    /// and stack, then resumed. Repeated while the descriptor's generation
    /// is odd or moves (another thread registering or dropping modules or
    /// threads), or a thread read without stopping moved on meanwhile.
    public func read() throws(LiveProcessError) -> Read {
        var retries = 0
        var lastProblem = ""
        for _ in 0..<Self.maximumAttempts {
            switch try attempt() {
            case .done(var read):
                read.retries = retries
                return read
            case .again(let problem):
                retries += 1
                lastProblem = problem
                if retries % 16 == 0 {
                    var pause = timespec(tv_sec: 0, tv_nsec: 100_000)
                    nanosleep(&pause, nil)
                } else {
                    sched_yield()
                }
            }
        }
        throw LiveProcessError(pid: pid, problem: "its lists kept changing: no consistent read in \(Self.maximumAttempts) attempts (last: \(lastProblem))")
    }

    private enum Attempt {
        case done(Read)
        case again(String)
    }

    private func generation() throws(LiveProcessError) -> UInt {
        switch memory.read(at: descriptorAddress &+ 16, count: 8) {
        case .success(let bytes): return bytes.reversed().reduce(0) { $0 << 8 | UInt($1) }
        case .failure(let error) where error.code == ESRCH: throw LiveProcessError(pid: pid, problem: "exited while it was read")
        case .failure(let error): throw LiveProcessError(pid: pid, problem: "cannot read its descriptor's generation: \(error)")
        }
    }

    private func attempt() throws(LiveProcessError) -> Attempt {
        let before = try generation()
        if before % 2 == 1 { return .again("generation \(before) is odd") }
        var checked = PostMortem.CheckedMemory(memory: memory)
        checked.source = "process \(pid)"
        let descriptor: PostMortem.Descriptor
        do {
            descriptor = try PostMortem.Descriptor(checked, at: descriptorAddress, program: program, images: images)
        } catch {
            // A list read while it changed can point anywhere.
            if try generation() != before { return .again("the lists changed while they were read") }
            try exitedCheck()
            throw LiveProcessError(pid: pid, problem: "\(error)")
        }
        var threads: [ProcessThread] = []
        var copies: [CapturedMemoryReader.Segment] = []
        var reads: [Int64: LiveThreadRead] = [:]
        var secondOpinions: [Int64: [UInt]] = [:]
        /// Threads read without stopping: what must still hold afterwards.
        var unstopped: [Unstopped] = []
        for (tid, headAddress) in descriptor.threads.sorted(by: { $0.key < $1.key }) {
            guard let head = memory.word(at: headAddress) else { return .again("thread \(tid)'s entry went away") }
            if head == 0 { continue }
            guard let limits = memory.word(at: head &+ 8), let exit = memory.bytes(at: limits &+ 8, count: 16) else {
                return .again("thread \(tid)'s activation went away")
            }
            let exitFP = word(exit, 0), exitPC = word(exit, 8)
            // The exit record stays set after a host call returns: it says
            // where the thread is only while the thread waits in the host
            // (blocked in a system call, its pc outside wasm code).
            if !stopsEveryThread, exitPC != 0, let blocked = blockedInSystemCall(tid),
               !descriptor.modules.contains(where: { $0.contains(blocked.pc) }) {
                let sp = PostMortem.stackPointer(returnAddress: exitPC, fp: exitFP, modules: descriptor.modules)
                threads.append(ProcessThread(tid: tid, pc: 0, fp: exitFP, sp: sp))
                reads[tid] = .hostCall
                unstopped.append(Unstopped(tid: tid, headAddress: headAddress, head: head, exit: exit, blocked: blocked))
                continue
            }
            switch try stopAndCopy(tid: tid, headAddress: headAddress, modules: descriptor.modules) {
            case .gone:
                continue
            case .read(let thread, let copied, let nanoseconds, let second):
                threads.append(thread)
                copies += copied
                reads[tid] = .stopped(nanoseconds: nanoseconds)
                if let second { secondOpinions[tid] = second }
            }
        }
        let snapshot = LiveSnapshot(memory: memory, threads: threads, mappedFiles: mappedFiles, copies: copies)
        let captures: [PostMortem.ThreadCapture]
        do {
            captures = try PostMortem.threads(of: snapshot, descriptor: descriptor)
        } catch {
            if try generation() != before { return .again("the lists changed while the stacks were read") }
            if !unstopped.isEmpty, !stillInPlace(unstopped) { return .again("a thread in a host call returned while it was read") }
            try exitedCheck()
            throw LiveProcessError(pid: pid, problem: "\(error)")
        }
        if try generation() != before { return .again("the lists changed while the stacks were read") }
        if !stillInPlace(unstopped) { return .again("a thread in a host call returned while it was read") }
        return .done(Read(snapshot: snapshot, threads: captures, reads: reads.filter { entry in captures.contains { $0.tid == entry.key } },
                          retries: 0, whileStopped: secondOpinions))
    }

    /// A thread read without stopping it, and what must still hold after.
    struct Unstopped {
        var tid: Int64
        var headAddress: UInt
        var head: UInt
        var exit: [UInt8]
        var blocked: SystemCall
    }

    /// Where a thread blocked in a system call waits (`/proc/PID/task/TID/
    /// syscall`: the call, its arguments, then sp and pc); nil when it runs.
    struct SystemCall: Equatable {
        var line: String
        var pc: UInt
    }

    func blockedInSystemCall(_ tid: Int64) -> SystemCall? {
        guard let text = Self.readText("/proc/\(pid)/task/\(tid)/syscall") else { return nil }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 3, let number = Int(fields[0]), number >= 0,
              let pc = UInt(fields[fields.count - 1].dropFirst(2), radix: 16) else { return nil }
        return SystemCall(line: text, pc: pc)
    }

    /// Whether each thread read without stopping is still where it was:
    /// blocked in the same system call, the same activation, the same exit.
    private func stillInPlace(_ unstopped: [Unstopped]) -> Bool {
        unstopped.allSatisfy { thread in
            guard blockedInSystemCall(thread.tid) == thread.blocked, memory.word(at: thread.headAddress) == thread.head,
                  let limits = memory.word(at: thread.head &+ 8) else { return false }
            return memory.bytes(at: limits &+ 8, count: 16) == thread.exit
        }
    }

    private enum Stopped {
        case read(ProcessThread, [CapturedMemoryReader.Segment], nanoseconds: UInt64, whileStopped: [UInt]?)
        /// The thread exited before it stopped.
        case gone
    }

    /// Stops `tid`, reads its registers, its activation head, limits
    /// record and stack (from sp to above its outermost activation), and
    /// resumes it — on every path.
    private func stopAndCopy(tid: Int64, headAddress: UInt, modules: [CaptureFile.Module]) throws(LiveProcessError) -> Stopped {
        let start = Self.now()
        var pending: Int32 = 0
        let stopped = wu_live_stop(Int32(tid), Self.stopTimeoutMilliseconds, &pending)
        // The thread (or the whole process) died before it stopped: waitpid
        // then finds no such child (ECHILD) or ptrace no such thread.
        if stopped == -ESRCH || stopped == -ECHILD { return .gone }
        if stopped == -EPERM {
            throw LiveProcessError(pid: pid, problem: "not permitted to stop thread \(tid) (ptrace): " + Self.permissionAdvice(pid))
        }
        if stopped == -ETIMEDOUT {
            throw LiveProcessError(pid: pid, problem: "thread \(tid) did not stop within \(Self.stopTimeoutMilliseconds) ms "
                                   + "(in uninterruptible sleep?); it is resumed as soon as it stops")
        }
        guard stopped == 0 else {
            throw LiveProcessError(pid: pid, problem: "cannot stop thread \(tid): \(LiveMemory.Errno(-stopped))")
        }
        defer { _ = wu_live_resume(Int32(tid), pending) }
        var pc: UInt64 = 0, fp: UInt64 = 0, sp: UInt64 = 0
        let got = wu_live_registers(Int32(tid), &pc, &fp, &sp)
        guard got == 0 else { return .gone }
        var copies: [CapturedMemoryReader.Segment] = []
        func copy(_ address: UInt, _ count: Int) -> [UInt8]? {
            guard let bytes = memory.bytes(at: address, count: count) else { return nil }
            copies.append(CapturedMemoryReader.Segment(baseAddress: address, bytes: bytes))
            return bytes
        }
        // Its activation state as it is now: the head, the limits record,
        // and every record's entry fp (the outermost bounds the stack).
        guard let headBytes = copy(headAddress, 8) else { return .gone }
        let head = word(headBytes, 0)
        var outermost = UInt(sp)
        if head != 0, let limitsWord = memory.word(at: head &+ 8), let limits = copy(limitsWord, 32) {
            outermost = max(outermost, word(limits, 24))
            var record = head, steps = 0
            while record != 0, steps < PostMortem.Layout.limit, let fields = memory.bytes(at: record, count: 48) {
                outermost = max(outermost, word(fields, 40))
                let older = word(fields, 0)
                guard older > record else { break }
                record = older
                steps += 1
            }
        }
        if outermost > UInt(sp) {
            let size = min(outermost - UInt(sp) + 16, UInt(PostMortem.Layout.maximumStackBytes))
            _ = copy(UInt(sp), Int(size))
        }
        let thread = ProcessThread(tid: tid, pc: UInt(pc), fp: UInt(fp), sp: UInt(sp))
        let second = whileStopped?(tid, modules)
        // The whole stop, a second unwinder's time included.
        return .read(thread, copies, nanoseconds: Self.now() &- start, whileStopped: second)
    }

    private func exitedCheck() throws(LiveProcessError) {
        if kill(pid_t(pid), 0) != 0 && errno == ESRCH { throw LiveProcessError(pid: pid, problem: "exited while it was read") }
    }

    private func word(_ bytes: [UInt8], _ at: Int) -> UInt {
        bytes[at..<(at + 8)].reversed().reduce(0) { $0 << 8 | UInt($1) }
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    // MARK: /proc

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func readText(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while text.count < 64 << 20 {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            text += chunk[0..<count]
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The files the process maps (`/proc/PID/maps`).
    static func maps(_ pid: Int32) -> [MappedFile] {
        guard let text = readText("/proc/\(pid)/maps") else { return [] }
        return text.split(separator: "\n").compactMap { line -> MappedFile? in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[5].hasPrefix("/") else { return nil }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let low = UInt(bounds[0], radix: 16), let high = UInt(bounds[1], radix: 16), low < high,
                  let offset = UInt(fields[2], radix: 16) else { return nil }
            return MappedFile(range: low..<high, fileOffset: offset, path: fields[5...].joined(separator: " "))
        }
    }

    /// What to do about a refused read, from who owns the process and the
    /// kernel's ptrace policy (as py-spy explains it).
    public static func permissionAdvice(_ pid: Int32) -> String {
        let status = readText("/proc/\(pid)/status") ?? ""
        let owner = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }
            .flatMap { $0.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first }.flatMap { UInt32($0) }
        let me = geteuid()
        if let owner, owner != me, me != 0 {
            return "it belongs to uid \(owner) and this is uid \(me): run as uid \(owner), or as root"
        }
        if let scope = readText("/proc/sys/kernel/yama/ptrace_scope").flatMap({ Int($0.filter { !$0.isWhitespace }) }), scope > 0 {
            let rule = scope == 1 ? "only a parent may read its children" : scope == 2 ? "only root may" : "no process may"
            return "kernel.yama.ptrace_scope is \(scope) (\(rule)): run as root, or allow it with `sudo sysctl kernel.yama.ptrace_scope=0`"
        }
        return "not permitted (no CAP_SYS_PTRACE: in a container, add it, e.g. `docker run --cap-add=SYS_PTRACE`)"
    }
}
