import WAT
import WasmKit

/// WasmKit's interpreter: a second, independent implementation of wasm
/// that the JIT's results are compared with.
enum Interpreter {
    enum Outcome: Hashable {
        case results([UInt64])
        case trapped
    }

    final class Loaded {
        let instance: Instance
        init(text: String) throws {
            let binary = try wat2wasm(text, options: EncodeOptions(nameSection: true))
            let module = try parseWasm(bytes: binary)
            let engine = Engine()
            let store = Store(engine: engine)
            instance = try module.instantiate(store: store)
        }

        /// Calls `export` with 64-bit slots; i32 arguments use their low half.
        func call(_ export: String, _ arguments: [UInt64], kinds: [Bool]) throws -> Outcome {
            guard let function = instance.exports[function: export] else { fatalError("no export \(export)") }
            let values: [Value] = zip(arguments, kinds).map { value, is64 in
                is64 ? .i64(value) : .i32(UInt32(truncatingIfNeeded: value))
            }
            do {
                return .results(try function.invoke(values).map { value in
                    switch value {
                    case .i32(let v): return UInt64(v)
                    case .i64(let v): return v
                    default: fatalError("unexpected result \(value)")
                    }
                })
            } catch {
                return .trapped
            }
        }
    }
}
