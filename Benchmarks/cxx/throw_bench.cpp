// The C++ baseline of the throw benchmark: `throw` caught `depth` frames
// up, unwound by libgcc's DWARF unwinder (_Unwind_RaiseException), as
// g++ -O2 compiles it. Built by `make bench` into .build/cxx-throw-bench.so
// and opened by wasm-unwind-bench with dlopen; libgcc and libstdc++ are
// linked in statically with -Bsymbolic, so the throw uses libgcc's unwinder
// even though the bench binary also links libunwind (whose
// _Unwind_RaiseException would otherwise interpose).
struct Thrown {
    int value;
};

static int dive(int depth);
// Called through a volatile pointer so that the recursion stays real frames
// (no tail-recursion elimination, no inlining).
static int (*volatile next_frame)(int) = dive;

static int dive(int depth) {
    if (depth == 0) throw Thrown{7};
    return next_frame(depth - 1) + 1;
}

/// `count` throws, each caught `depth + 1` frames up; returns the sum of
/// what was caught.
extern "C" int wu_cxx_throw_catch(int depth, int count) {
    int sum = 0;
    for (int i = 0; i < count; i++) {
        try {
            sum += next_frame(depth);
        } catch (const Thrown &thrown) {
            sum += thrown.value;
        }
    }
    return sum;
}
