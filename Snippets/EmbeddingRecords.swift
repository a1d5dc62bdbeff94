// What a code generator needs to write the records: the runtime-limits
// record of a store, and the offsets its trampolines (or call sites) store to.
import WasmUnwind

let limits = RuntimeLimits()
// snippet.show
// Generated code keeps the record's address (here through the instance
// context) and stores to fixed offsets:
//   entry trampoline:  [limits + lastWasmEntryFP] = rbp
//   exit trampoline:   [limits + lastWasmExitFP]  = [rbp]      (the wasm caller's fp)
//                      [limits + lastWasmExitPC]  = [rbp + 8]  (its precise return address)
//   every prologue:    cmp rsp, [limits + stackLimit]; jb stack_overflow
print("limits record at 0x\(String(limits.address, radix: 16))")
print("stackLimit +\(RuntimeLimits.Offsets.stackLimit), lastWasmExitFP +\(RuntimeLimits.Offsets.lastWasmExitFP),",
      "lastWasmExitPC +\(RuntimeLimits.Offsets.lastWasmExitPC), lastWasmEntryFP +\(RuntimeLimits.Offsets.lastWasmEntryFP)")

// Every host -> wasm call runs inside an activation: the record's fields are
// saved and cleared on entry and restored however the call ends, so nested
// host -> wasm -> host -> wasm calls form a chain the walker can follow.
let stackLimit: UInt = 0  // your entry's limit: sp minus the wasm stack size
Activation.enter(limits, stackLimit: stackLimit) { activation in
    // Call your entry trampoline here.
    print("inside activation 0x\(String(activation.address, radix: 16)), depth \(Activation.depth(of: limits))")
}
// snippet.end
