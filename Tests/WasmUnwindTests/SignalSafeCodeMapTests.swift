import CWasmUnwindABI
import Foundation
import Testing
import WasmUnwind

@Suite("The signal-safe code map")
struct SignalSafeCodeMapTests {
    func module(_ name: String, base: UInt) -> CodeModule {
        CodeModule(name: name, codeRange: base..<(base + 0x100), functions: [
            CodeFunction(index: 1, name: "f", codeRange: 0x40..<0x80, bodyOffset: 0, addressMap: []),
            CodeFunction(index: 2, name: "g", codeRange: 0x80..<0xC0, bodyOffset: 0, addressMap: []),
        ], stubs: [CodeStub(kind: .entryTrampoline, codeRange: 0x00..<0x20), CodeStub(kind: .exitTrampoline, codeRange: 0xC0..<0xE0)])
    }

    @Test("a registry publishes every registration: functions, stubs, gaps and unregistered code")
    func publishes() throws {
        let map = SignalSafeCodeMap()
        var registry = CodeRegistry(publishingTo: map)
        #expect(SignalSafeCodeMap.kind(at: 0x10040, in: map.handle) == nil)
        try registry.register(module("a", base: 0x10000))
        try registry.register(module("b", base: 0x30000))
        let expected: [(UInt, CodeKind?)] = [
            (0x10000, .entryTrampoline), (0x1001F, .entryTrampoline), (0x10020, nil), (0x10040, .wasmFunction),
            (0x100BF, .wasmFunction), (0x100C0, .exitTrampoline), (0x100E0, nil), (0x0FFFF, nil), (0x30080, .wasmFunction),
            (0x20000, nil),
        ]
        for (pc, kind) in expected {
            #expect(SignalSafeCodeMap.kind(at: pc, in: map.handle) == kind, "0x\(String(pc, radix: 16))")
            #expect(registry.kind(at: pc) == kind)
        }
        registry.unregister(codeBase: 0x10000)
        #expect(SignalSafeCodeMap.kind(at: 0x10040, in: map.handle) == nil)
        #expect(SignalSafeCodeMap.kind(at: 0x30040, in: map.handle) == .wasmFunction)
    }

    @Test("lookups on another thread, and in a signal handler interrupting the publishing thread itself, while it publishes: always one table or the other")
    func lookupsWhilePublishing() throws {
        let map = SignalSafeCodeMap()
        var registry = CodeRegistry(publishingTo: map)
        try registry.register(module("stable", base: 0x50000))
        SignalSafeCodeMapTests.handle = map.handle
        // Each lookup: a pc of the module that never leaves, and one of a
        // module that comes and goes.
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in SignalSafeCodeMapTests.check(&SignalSafeCodeMapTests.inHandler) }
        var previous = sigaction()
        sigaction(SIGUSR2, &action, &previous)
        var unblocked = sigset_t(), mask = sigset_t()
        sigemptyset(&unblocked)
        sigaddset(&unblocked, SIGUSR2)
        pthread_sigmask(SIG_UNBLOCK, &unblocked, &mask)
        defer {
            pthread_sigmask(SIG_SETMASK, &mask, nil)
            sigaction(SIGUSR2, &previous, nil)
        }
        let writer = pthread_self()
        SignalSafeCodeMapTests.done = false
        // A reader thread, and a thread that signals the writer over and over.
        let reader = Thread {
            while !SignalSafeCodeMapTests.done { SignalSafeCodeMapTests.check(&SignalSafeCodeMapTests.onThread) }
        }
        let signaler = Thread {
            while !SignalSafeCodeMapTests.done { pthread_kill(writer, SIGUSR2); usleep(20) }
        }
        reader.start()
        signaler.start()
        for _ in 0..<3000 {
            try registry.register(module("moving", base: 0x70000))
            registry.unregister(codeBase: 0x70000)
        }
        SignalSafeCodeMapTests.done = true
        while !(reader.isFinished && signaler.isFinished) { usleep(1000) }
        SignalSafeCodeMapTests.handle = nil
        #expect(SignalSafeCodeMapTests.inHandler > 100, "\(SignalSafeCodeMapTests.inHandler) lookups in the handler")
        #expect(SignalSafeCodeMapTests.onThread > 1000, "\(SignalSafeCodeMapTests.onThread) lookups on the reader")
        #expect(SignalSafeCodeMapTests.wrong == 0)
    }

    static func check(_ count: inout Int) {
        guard let handle = handle else { return }
        if SignalSafeCodeMap.kind(at: 0x50040, in: handle) != .wasmFunction { wrong += 1 }
        let kind = SignalSafeCodeMap.kind(at: 0x70040, in: handle)
        if kind != nil && kind != .wasmFunction { wrong += 1 }
        count += 1
    }

    nonisolated(unsafe) static var handle: OpaquePointer?
    nonisolated(unsafe) static var done = false
    nonisolated(unsafe) static var inHandler = 0
    nonisolated(unsafe) static var onThread = 0
    nonisolated(unsafe) static var wrong = 0
}
