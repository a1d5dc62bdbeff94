/// The demo module, built in so `wasm-unwind demo` runs from any directory.
/// fixtures/demo/nested.wat holds the same text (a test checks), for
/// `wasm-objdump` and for reading.
enum DemoModule {
    static let source = #"""
;; The demo: three activations on one stack.
;;   main -> helper -> host call:level2 -> level2 -> middle -> host call:level3
;;        -> level3 -> leaf -> host backtrace
(module $demo
  (import "host" "call:level2" (func $enter_level2 (param i32) (result i32)))
  (import "host" "call:level3" (func $enter_level3 (param i32) (result i32)))
  (import "host" "backtrace" (func $backtrace))

  (func $main (export "main") (param $n i32) (result i32)
    local.get $n
    call $helper)

  (func $helper (param $n i32) (result i32)
    local.get $n
    i32.const 1
    i32.add
    call $enter_level2)

  (func $level2 (export "level2") (param $n i32) (result i32)
    local.get $n
    call $middle)

  (func $middle (param $n i32) (result i32)
    local.get $n
    i32.const 10
    i32.mul
    call $enter_level3)

  (func $level3 (export "level3") (param $n i32) (result i32)
    local.get $n
    call $leaf)

  (func $leaf (param $n i32) (result i32)
    call $backtrace
    local.get $n
    i32.const 2
    i32.add))
"""#
}
