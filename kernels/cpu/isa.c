#include "kernels/cpu/isa.h"

bool vs_isa_supported(enum vs_isa isa)
{
    switch (isa) {
    case VS_ISA_AVX512:
        return __builtin_cpu_supports("avx512f");
    case VS_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default:
        return true;
    }
}
