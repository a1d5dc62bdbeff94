import Testing
import WasmUnwind

/// Names as Wasmtime prints them (its `demangle_function_name`: Rust first,
/// with the hash; then C++). The expected texts are rustc-demangle's and
/// c++filt's for the same symbols.
@Suite("Demangling function names")
struct DemanglingTests {
    @Test("Rust legacy symbols: path elements, the hash kept, escapes decoded")
    func rust() {
        #expect(Demangling.demangle("_ZN4testE") == "test")
        #expect(Demangling.demangle("_ZN3foo3barE") == "foo::bar")
        #expect(Demangling.demangle("_ZN3foo17h05af221e174051e9E") == "foo::h05af221e174051e9")
        #expect(Demangling.demangle("_ZN4core3ptr85drop_in_place$LT$std..rt..lang_start$LT$$LP$$RP$$GT$..$u7b$$u7b$closure$u7d$$u7d$$GT$17h0123456789abcdefE")
                == "core::ptr::drop_in_place<std::rt::lang_start<()>::{{closure}}>::h0123456789abcdef")
        #expect(Demangling.demangle("_ZN71_$LT$Test$u20$$u2b$$u20$$u27$static$u20$as$u20$foo..Bar$LT$Test$GT$$GT$3bar17h930b740aa94f1d3aE")
                == "<Test + 'static as foo::Bar<Test>>::bar::h930b740aa94f1d3a")
        // LLVM's `.llvm.NNNN` goes when all after it is 0-9, A-F, @ (as
        // rustc-demangle, so as Wasmtime 50 prints std's lang_start closure
        // of a wasm32-wasi program); other suffixes stay.
        #expect(Demangling.demangle("_ZN3foo3bar17h05af221e174051e9E.llvm.1234") == "foo::bar::h05af221e174051e9")
        #expect(Demangling.demangle("_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17hd4eb2a6ec3c6bb9fE.llvm.3177344385138527942")
                == "std::rt::lang_start::{{closure}}::hd4eb2a6ec3c6bb9f")
        #expect(Demangling.demangle("_ZN3foo3bar17h05af221e174051e9E.llvm.abc") == "foo::bar::h05af221e174051e9.llvm.abc")
        #expect(Demangling.demangle("_ZN3foo3bar17h05af221e174051e9E.cold") == "foo::bar::h05af221e174051e9.cold")
    }

    @Test("C++ symbols through the C++ runtime's demangler")
    func cpp() {
        #expect(Demangling.demangle("_ZNK8geometry8Triangle4areaEv") == "geometry::Triangle::area() const")
        #expect(Demangling.demangle("_ZN8geometry11AccumulatorIjE3addERKNS_5ShapeE")
                == "geometry::Accumulator<unsigned int>::add(geometry::Shape const&)")
        #expect(Demangling.demangle("_Z3fooii") == "foo(int, int)")
    }

    @Test("everything else is shown as it is")
    func others() {
        #expect(Demangling.demangle("main") == "main")
        #expect(Demangling.demangle("_Znot a symbol") == "_Znot a symbol")
        #expect(Demangling.demangle("_ZN3fooE$") == "_ZN3fooE$")
        #expect(Demangling.demangle("_ZN999999999999999999999foo") == "_ZN999999999999999999999foo")
        #expect(Demangling.demangle("_RNvCs1234_7mycrate3foo") == "_RNvCs1234_7mycrate3foo")
        let long = "_Z" + String(repeating: "N3foo", count: 2000) + "E"
        #expect(Demangling.demangle(long) == long)
    }
}
