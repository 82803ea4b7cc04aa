/* simcuda fault injection (SIMCUDA_FAIL, simcuda_fail_call) and call counters. */
#include "test_sim_common.h"

static void fail_third_map(void)
{
    setenv("SIMCUDA_FAIL", "cuMemMap:3,cuMemCreate:2:CUDA_ERROR_UNKNOWN", 1);
}

Test(sim_fault, env_fails_exactly_the_nth_call, .init = fail_third_map)
{
    CU_OK(cuInit(0));
    CUmemAllocationProp prop = sim_prop(CU_MEM_LOCATION_TYPE_DEVICE, 0);
    CUmemGenericAllocationHandle h, h2;
    CU_OK(cuMemCreate(&h, 4 * GRANULE, &prop, 0));
    cr_assert_eq(cuMemCreate(&h2, GRANULE, &prop, 0), CUDA_ERROR_UNKNOWN);
    cr_assert_eq(simcuda_physical_in_use(0), 4 * GRANULE, "a failed call does nothing");
    CUdeviceptr va;
    CU_OK(cuMemAddressReserve(&va, 4 * GRANULE, 0, 0, 0));
    CU_OK(cuMemMap(va, GRANULE, 0, h, 0));
    CU_OK(cuMemMap(va + GRANULE, GRANULE, GRANULE, h, 0));
    cr_assert_eq(cuMemMap(va + 2 * GRANULE, GRANULE, 2 * GRANULE, h, 0), CUDA_ERROR_OUT_OF_MEMORY);
    CU_OK(cuMemMap(va + 2 * GRANULE, GRANULE, 2 * GRANULE, h, 0));
    cr_assert_eq(simcuda_call_count("cuMemMap"), 4, "failed calls count too");
}

static void bad_spec(void)
{
    setenv("SIMCUDA_FAIL", "cuMemMap:0", 1);
}

Test(sim_fault, malformed_spec_fails_cuinit_with_a_message, .init = bad_spec)
{
    cr_redirect_stderr();
    cr_assert_eq(cuInit(0), CUDA_ERROR_INVALID_VALUE);
    fflush(stderr);
    cr_assert_stderr_eq_str("simcuda: SIMCUDA_FAIL=\"cuMemMap:0\": entry \"cuMemMap:0\" is not "
                            "name:nth[:CUDA_ERROR_NAME] with nth >= 1\n");
}

static void bad_error_name(void)
{
    setenv("SIMCUDA_FAIL", "cuMemMap:1:CUDA_ERROR_NOPE", 1);
}

Test(sim_fault, unknown_error_name_is_reported, .init = bad_error_name)
{
    cr_redirect_stderr();
    cr_assert_eq(cuInit(0), CUDA_ERROR_INVALID_VALUE);
    fflush(stderr);
    cr_assert_stderr_eq_str("simcuda: SIMCUDA_FAIL=\"cuMemMap:1:CUDA_ERROR_NOPE\": unknown error "
                            "name \"CUDA_ERROR_NOPE\"\n");
}

Test(sim_fault, fail_call_counts_from_now)
{
    sim_start();
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 1));
    cr_assert_eq(simcuda_fail_call("cuMemAlloc_v2", 2, CUDA_ERROR_OUT_OF_MEMORY), 0);
    CU_OK(cuMemAlloc_v2(&p, 1));
    cr_assert_eq(cuMemAlloc_v2(&p, 1), CUDA_ERROR_OUT_OF_MEMORY);
    CU_OK(cuMemAlloc_v2(&p, 1));
    cr_assert_eq(simcuda_fail_call("cuMemAlloc_v2", 0, CUDA_ERROR_OUT_OF_MEMORY), -1);
    /* A fault on one entry point leaves its other versions alone. */
    cr_assert_eq(simcuda_fail_call("cuStreamSynchronize_ptsz", 1, CUDA_ERROR_UNKNOWN), 0);
    CU_OK(cuStreamSynchronize(NULL));
}

Test(sim_fault, counters_count_exact_symbols_and_reset)
{
    sim_start();
    simcuda_reset_call_counts();
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 1));
    CU_OK(cuMemsetD8_v2(p, 1, 1));
    CU_OK(cuMemFree_v2(p));
    cr_assert_eq(simcuda_call_count("cuMemAlloc_v2"), 1);
    cr_assert_eq(simcuda_call_count("cuMemFree_v2"), 1);
    cr_assert_eq(simcuda_call_count("cuMemsetD8_v2"), 1);
    cr_assert_eq(simcuda_call_count("cuMemAlloc"), 0);
    cr_assert_eq(simcuda_call_count("cuCtxSynchronize"), 0, "internal waits are not calls");
    cr_assert_eq(simcuda_call_count("cuStreamSynchronize"), 0);
    cr_assert_eq(simcuda_call_count(NULL), 0);
    simcuda_reset_call_counts();
    cr_assert_eq(simcuda_call_count("cuMemAlloc_v2"), 0);
}
