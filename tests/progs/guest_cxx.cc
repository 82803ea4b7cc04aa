// A C++ library that guest_host dlopens after start-up, as Python imports a C++ extension: its
// first throw binds libstdc++'s calls into the unwinder (_Unwind_RaiseException,
// _Unwind_Resume) in the process's global scope, where a preloaded library comes first.
#include <stdexcept>

namespace {

struct counted {
    long *count;
    ~counted() { ++*count; } // a cleanup on the unwinding path: reached through _Unwind_Resume
};

__attribute__((noinline)) void fail(long i, long *unwound)
{
    counted c{unwound};
    if (i >= 0)
        throw std::runtime_error("expected");
}

} // namespace

// Throws and catches n exceptions; returns how many were caught with their cleanup run.
extern "C" long vs_cxx_throw_catch(long n)
{
    long caught = 0, unwound = 0;
    for (long i = 0; i < n; i++) {
        try {
            fail(i, &unwound);
        } catch (const std::runtime_error &) {
            caught++;
        }
    }
    return caught == unwound ? caught : -1;
}
