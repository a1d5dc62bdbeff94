import WAT
import WasmJIT
import WasmParser
import WasmTypes

/// One script's run: its store, its modules by name, what is registered
/// for import, and the tally.
struct WastSession {
    let text: String
    let engine: Engine
    let store: Store
    var result: WastFileResult
    /// The line of the directive being run.
    var line = 0

    /// The most recent module, or why there is none usable (it needs a
    /// feature outside the runtime, or it failed).
    var current: Available<Instance> = .unavailable("no module defined yet")
    var named: [String: Available<Instance>] = [:]
    /// `(module definition $M ...)`: compiled, instantiated by `module instance`.
    var definitions: [String: Available<WasmJIT.Module>] = [:]
    var lastDefinition: Available<WasmJIT.Module>?
    /// Module names imports can come from: `spectest`, and every
    /// `register`ed instance (or why it is unusable).
    var imports = Imports()
    var unusableImports: [String: String] = [:]
    /// Registered names whose module declares typed function references
    /// (its exports' types are matched as funcref).
    var typedExporters: Set<String> = []
    let host: SpecTestHost
    /// The host objects `ref.extern N` stands for, by N.
    var externs: [UInt32: ExternRef] = [:]

    enum Available<T> {
        case available(T)
        /// Why not: for a skip, the feature; for a failure, the failure.
        case unavailable(String)
        case skipped(String)
    }

    /// How one directive ended.
    enum Outcome {
        case pass
        case fail(String)
        case skip(String)
    }

    init(file: String, text: String, configuration: Engine.Configuration) {
        self.text = text
        engine = Engine(configuration: configuration)
        store = Store(engine: engine)
        result = WastFileResult(file: file)
        host = SpecTestHost(store: store)
        host.define(into: &imports)
    }

    mutating func run() {
        var script: WAST
        do {
            script = try parseWAST(text, features: .all)
        } catch {
            result.notParsed.append(.init(line: 0, message: "\(error)"))
            return
        }
        // The forms' lines stand for the parser's locations (each of which
        // is found by a scan from the start of the file); every form must be
        // run, and nothing but forms may be at the top level.
        let forms = WastForms(text)
        var index = 0
        defer {
            if index < forms.lines.count {
                result.notParsed.append(.init(line: forms.lines[index], message: "the parser stopped here: this and the \(forms.lines.count - index - 1) directives after it did not run"))
            }
            if let stray = forms.stray {
                result.notParsed.append(.init(line: stray.line, message: "`\(stray.text)` outside any directive: a script is a sequence of (directives)"))
            }
            if forms.lines.isEmpty && forms.stray == nil {
                result.notParsed.append(.init(line: 0, message: "no directives: not a .wast script"))
            }
        }
        while let (directive, location) = script.nextDirectiveResult() {
            line = index < forms.lines.count ? forms.lines[index] : location.computeLineAndColumn().line
            index += 1
            switch directive {
            case .failure(let failure):
                result.notParsed.append(.init(line: line, message: TextError.describe(failure.error)))
                if let module = failure.module {
                    let reason = Available<Instance>.unavailable("its module (line \(line)) was not parsed")
                    if module.isDefinition {
                        lastDefinition = .unavailable("its module (line \(line)) was not parsed")
                    } else {
                        current = reason
                        if let id = module.id { named[id] = reason }
                    }
                }
            case .success(let directive):
                record(run(directive))
            }
        }
    }

    mutating func record(_ outcome: Outcome) {
        switch outcome {
        case .pass: result.passed += 1
        case .fail(let message): result.failures.append(.init(line: line, message: message))
        case .skip(let reason): result.skipped[reason, default: 0] += 1
        }
    }

    // MARK: Directives

    mutating func run(_ directive: WASTDirective) -> Outcome {
        switch directive {
        case .module(let module):
            return define(module)
        case .moduleInstance(let instanceName, let moduleName):
            let definition = moduleName.map { definitions[$0] ?? .unavailable("no module definition \($0)") }
                ?? lastDefinition ?? .unavailable("no module definition")
            let (available, outcome) = instantiate(definition)
            current = available
            if let instanceName { named[instanceName] = available }
            return outcome
        case .register(let name, let id):
            let instance = id.map { named[$0] ?? .unavailable("no module named \($0)") } ?? current
            switch instance {
            case .available(let instance):
                imports.define(module: name, exportsOf: instance)
                unusableImports[name] = nil
                if instance.module.usesTypedFunctionReferences { typedExporters.insert(name) }
                return .pass
            case .skipped(let reason):
                unusableImports[name] = reason
                return .skip(reason)
            case .unavailable(let reason):
                unusableImports[name] = reason
                return .fail("register \"\(name)\": \(reason)")
            }
        case .invoke(let invoke):
            switch call(invoke) {
            case .results: return .pass
            case .trap(let trap): return .fail("invoke \"\(invoke.name)\" trapped: \(trap.message)")
            case .fail(let message): return .fail(message)
            case .skip(let reason): return .skip(reason)
            }
        case .assertReturn(let execute, let expected):
            return assertReturn(execute, expected)
        case .assertTrap(let execute, let message):
            return assertTrap(execute, message)
        case .assertExhaustion(let invoke, let message):
            switch call(invoke) {
            case .trap(let trap) where trap.code == .stackOverflow: return .pass
            case .trap(let trap): return .fail("expected \"\(message)\", trapped with \"\(trap.message)\"")
            case .results(let values): return .fail("expected \"\(message)\", returned \(values)")
            case .fail(let why): return .fail(why)
            case .skip(let reason): return .skip(reason)
            }
        case .assertInvalid(let module, let message):
            return assertRejected(module.source, message, kind: "invalid")
        case .assertMalformed(let module, let message):
            return assertRejected(module.source, message, kind: "malformed")
        case .assertUnlinkable(let wat, let message):
            switch compile(.text(wat)) {
            case .skipped(let reason): return .skip(reason)
            case .unavailable(let why): return .fail("assert_unlinkable: the module does not compile: \(why)")
            case .available(let module):
                if let reason = unusableImport(of: module) { return .skip(reason) }
                do {
                    _ = try Instance(store: store, module: module, imports: imports)
                    // Typed references are matched as funcref: a non-null
                    // import of a nullable export links here.
                    if module.usesTypedFunctionReferences
                        || module.importModuleNames.contains(where: typedExporters.contains) {
                        return .skip(Feature.functionReferences)
                    }
                    return .fail("assert_unlinkable: the module linked, expected \"\(message)\"")
                } catch is InstantiationError {
                    return .pass
                } catch {
                    return .fail("assert_unlinkable: expected a link error (\"\(message)\"), got \(error)")
                }
            }
        case .assertException(let execute):
            return assertException(execute)
        case .assertFuel, .assertOutOfFuel:
            return .skip("fuel metering")
        }
    }

    mutating func define(_ directive: ModuleDirective) -> Outcome {
        let compiled = compile(directive.source)
        if directive.isDefinition {
            lastDefinition = compiled
            if let id = directive.id { definitions[id] = compiled }
            switch compiled {
            case .available: return .pass
            case .skipped(let reason): return .skip(reason)
            case .unavailable(let why): return .fail(why)
            }
        }
        let (available, outcome) = instantiate(compiled)
        current = available
        if let id = directive.id { named[id] = available }
        return outcome
    }

    /// Instantiates a compiled module with the script's imports.
    mutating func instantiate(_ compiled: Available<WasmJIT.Module>) -> (Available<Instance>, Outcome) {
        switch compiled {
        case .skipped(let reason): return (.skipped(reason), .skip(reason))
        case .unavailable(let why): return (.unavailable(why), .fail(why))
        case .available(let module):
            if let reason = unusableImport(of: module) { return (.skipped(reason), .skip(reason)) }
            do {
                let instance = try Instance(store: store, module: module, imports: imports)
                return (.available(instance), .pass)
            } catch let trap as Trap {
                let why = "instantiation trapped: \(trap.message)"
                return (.unavailable(why), .fail(why))
            } catch {
                let why = "instantiation failed: \(error)"
                return (.unavailable(why), .fail(why))
            }
        }
    }

    /// A skip reason if the module imports from a registered module that
    /// was skipped.
    func unusableImport(of module: WasmJIT.Module) -> String? {
        for name in module.importModuleNames {
            if let reason = unusableImports[name] { return reason }
        }
        return nil
    }

    // MARK: Compiling

    /// The module of a `module` directive, compiled; or the feature it
    /// needs (a skip); or why it is not a module (a failure).
    func compile(_ source: ModuleSource) -> Available<WasmJIT.Module> {
        do {
            return .available(try compiledModule(source))
        } catch let error as CompileError {
            if let feature = Feature.of(error) { return .skipped(feature) }
            return .unavailable("the module does not compile: \(error)")
        } catch {
            return .unavailable("the module does not compile: \(error)")
        }
    }

    func compiledModule(_ source: ModuleSource) throws -> WasmJIT.Module {
        switch source {
        case .text(var wat):
            let binary: [UInt8]
            do {
                binary = try wat.encode(options: EncodeOptions(nameSection: true))
            } catch {
                throw CompileError.invalidText(message: TextError.describe(error), line: nil, column: nil)
            }
            return try WasmJIT.Module(engine: engine, binary: binary)
        case .binary(let bytes):
            return try WasmJIT.Module(engine: engine, binary: bytes)
        case .quote(let bytes):
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw CompileError.invalidText(message: "quoted module is not UTF-8", line: nil, column: nil)
            }
            return try WasmJIT.Module(engine: engine, text: text)
        }
    }

    /// `assert_invalid` and `assert_malformed`: the module must not
    /// compile. (Messages are not compared: each engine words them its own
    /// way.) A module rejected only for a feature outside the runtime is a
    /// skip.
    func assertRejected(_ source: ModuleSource, _ message: String, kind: String) -> Outcome {
        do {
            let module = try compiledModule(source)
            if module.usesTypedFunctionReferences { return .skip(Feature.functionReferences) }
            return .fail("assert_\(kind): the module compiled, expected \"\(message)\"")
        } catch let error as CompileError {
            if let feature = Feature.of(error) { return .skip(feature) }
            return .pass
        } catch {
            return .pass
        }
    }

    // MARK: Running

    enum CallOutcome {
        case results([WasmJIT.Value])
        case trap(Trap)
        case fail(String)
        case skip(String)
    }

    func instance(named name: String?) -> Available<Instance> {
        guard let name else { return current }
        return named[name] ?? .unavailable("no module named \(name)")
    }

    mutating func call(_ invoke: WASTInvoke) -> CallOutcome {
        let instance: Instance
        switch self.instance(named: invoke.module) {
        case .available(let found): instance = found
        case .skipped(let reason): return .skip(reason)
        case .unavailable(let why): return .fail("invoke \"\(invoke.name)\": \(why)")
        }
        guard let function = instance.export(invoke.name) else {
            return .fail("invoke: no exported function \"\(invoke.name)\"")
        }
        var arguments: [WasmJIT.Value] = []
        for argument in invoke.args {
            switch value(of: argument) {
            case .success(let value): arguments.append(value)
            case .failure(let skip): return .skip(skip.reason)
            }
        }
        do {
            return .results(try function.call(arguments))
        } catch let trap as Trap {
            return .trap(trap)
        } catch {
            return .fail("invoke \"\(invoke.name)\": \(error)")
        }
    }

    mutating func assertReturn(_ execute: WASTExecute, _ expected: [WASTExpectValue]) -> Outcome {
        let actual: [WasmJIT.Value]
        switch execute {
        case .invoke(let invoke):
            switch call(invoke) {
            case .results(let values): actual = values
            case .trap(let trap): return .fail("\"\(invoke.name)\" trapped: \(trap.message), expected \(describe(expected))")
            case .fail(let why): return .fail(why)
            case .skip(let reason): return .skip(reason)
            }
        case .get(let module, let name):
            switch instance(named: module) {
            case .available(let instance):
                guard let global = instance.exportedGlobal(name) else { return .fail("get: no exported global \"\(name)\"") }
                actual = [global.value]
            case .skipped(let reason): return .skip(reason)
            case .unavailable(let why): return .fail("get \"\(name)\": \(why)")
            }
        case .wat(let wat):
            let (_, outcome) = instantiate(compile(.text(wat)))
            return outcome
        }
        if expected.contains(where: { if case .v128 = $0 { return true }; if case .v128Pattern = $0 { return true }; return false }) {
            return .skip(Feature.simd)
        }
        guard actual.count == expected.count,
              zip(actual, expected).allSatisfy({ matches($0, $1) })
        else {
            return .fail("returned \(actual), expected \(describe(expected))")
        }
        return .pass
    }

    /// `assert_exception`: the call leaves with a wasm exception no frame
    /// caught (not a trap, not results).
    mutating func assertException(_ execute: WASTExecute) -> Outcome {
        guard case .invoke(let invoke) = execute else { return .fail("assert_exception of something other than an invoke") }
        switch call(invoke) {
        case .trap(let trap) where trap.exception != nil: return .pass
        case .trap(let trap): return .fail("\"\(invoke.name)\" trapped with \"\(trap.message)\", expected an uncaught exception")
        case .results(let values): return .fail("\"\(invoke.name)\" returned \(values), expected an uncaught exception")
        case .fail(let why): return .fail(why)
        case .skip(let reason): return .skip(reason)
        }
    }

    mutating func assertTrap(_ execute: WASTExecute, _ message: String) -> Outcome {
        switch execute {
        case .invoke(let invoke):
            switch call(invoke) {
            case .trap(let trap): return trapMatches(trap, message)
            case .results(let values): return .fail("\"\(invoke.name)\" returned \(values), expected the trap \"\(message)\"")
            case .fail(let why): return .fail(why)
            case .skip(let reason): return .skip(reason)
            }
        case .wat(let wat):
            switch compile(.text(wat)) {
            case .skipped(let reason): return .skip(reason)
            case .unavailable(let why): return .fail(why)
            case .available(let module):
                if let reason = unusableImport(of: module) { return .skip(reason) }
                do {
                    _ = try Instance(store: store, module: module, imports: imports)
                    return .fail("the module instantiated, expected the trap \"\(message)\"")
                } catch let trap as Trap {
                    return trapMatches(trap, message)
                } catch {
                    return .fail("instantiation failed with \(error), expected the trap \"\(message)\"")
                }
            }
        case .get:
            return .fail("assert_trap of a global get")
        }
    }

    /// The spec's message is part of Wasmtime's wording for the same trap
    /// ("undefined element" of "undefined element: out of bounds table
    /// access"; "unreachable" of "wasm `unreachable` instruction executed").
    func trapMatches(_ trap: Trap, _ expected: String) -> Outcome {
        guard trap.code != nil else { return .fail("a host function failed: \(trap.message), expected the trap \"\(expected)\"") }
        let message = trap.code!.message
        // The spec's "uninitialized element 2" names the element; the
        // message of the trap does not.
        let wanted = expected.hasPrefix("uninitialized element") ? "uninitialized element" : expected
        return message.contains(wanted) ? .pass : .fail("trapped with \"\(message)\", expected \"\(expected)\"")
    }
}
