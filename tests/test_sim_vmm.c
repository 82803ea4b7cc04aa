/* simcuda virtual memory management: reservations, physical handles, mappings and their contents.
 */
#include "test_sim_common.h"

#include <string.h>

static void vram_8m(void)
{
    setenv("SIMCUDA_VRAM", "8MiB", 1);
    setenv("SIMCUDA_HOST_MEM", "4MiB", 1);
}

Test(sim_vmm, granularity_is_2mib)
{
    CU_OK(cuInit(0));
    CUmemAllocationProp prop = sim_prop(CU_MEM_LOCATION_TYPE_DEVICE, 0);
    size_t g;
    CU_OK(cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    cr_assert_eq(g, GRANULE);
    CU_OK(cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
    cr_assert_eq(g, GRANULE);
}

static void granule_512k(void)
{
    setenv("SIMCUDA_GRANULE", "512KiB", 1);
    setenv("SIMCUDA_VRAM", "8MiB", 1);
}

/* SIMCUDA_GRANULE: the device answers, accepts and charges that granularity instead of 2 MiB. */
Test(sim_vmm, a_finer_granule_is_answered_and_used, .init = granule_512k)
{
    sim_start();
    CUmemAllocationProp prop = sim_prop(CU_MEM_LOCATION_TYPE_DEVICE, 0);
    size_t g;
    CU_OK(cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    cr_assert_eq(g, 512 << 10);
    CUmemGenericAllocationHandle h = sim_create(512 << 10);
    cr_assert_eq(simcuda_physical_in_use(0), 512 << 10);
    CUdeviceptr va = sim_map(h, 512 << 10);
    memset((void *)va, 0x5a, 512 << 10);
    sim_unmap(va, 512 << 10);
    CU_OK(cuMemRelease(h));
    cr_assert_eq(cuMemCreate(&h, 768 << 10, &prop, 0), CUDA_ERROR_INVALID_VALUE,
                 "not a multiple of the granule");
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 600 << 10)); /* the driver's own memory rounds to the granule */
    cr_assert_eq(simcuda_physical_in_use(0), 1 * MiB);
}

static void bad_granule(void)
{
    setenv("SIMCUDA_GRANULE", "3MiB", 1);
}

Test(sim_vmm, a_granule_that_is_no_power_of_two_up_to_2mib_fails_cuinit, .init = bad_granule)
{
    cr_redirect_stderr();
    cr_assert_eq(cuInit(0), CUDA_ERROR_INVALID_VALUE);
    fflush(stderr);
    cr_assert_stderr_eq_str(
        "simcuda: SIMCUDA_GRANULE=\"3MiB\": expected a power of two from 64KiB to 2MiB\n");
}

Test(sim_vmm, remapping_a_handle_elsewhere_keeps_its_contents)
{
    sim_start();
    CUmemGenericAllocationHandle h = sim_create(2 * GRANULE);
    CUdeviceptr a = sim_map(h, 2 * GRANULE);
    memset((void *)a, 0x11, GRANULE);
    memset((void *)(a + GRANULE), 0x22, GRANULE);
    sim_unmap(a, 2 * GRANULE);

    /* Same handle at a new address: the data is the handle's, not the address's. */
    CUdeviceptr b = sim_map(h, 2 * GRANULE);
    cr_assert_eq(((unsigned char *)b)[0], 0x11);
    cr_assert_eq(((unsigned char *)b)[2 * GRANULE - 1], 0x22);
    /* Two views of one handle see each other's writes. */
    CUdeviceptr c;
    CU_OK(cuMemAddressReserve(&c, GRANULE, 0, 0, 0));
    CU_OK(cuMemMap(c, GRANULE, GRANULE, h, 0));
    CUmemAccessDesc rw = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CU_OK(cuMemSetAccess(c, GRANULE, &rw, 1));
    cr_assert_eq(((unsigned char *)c)[0], 0x22);
    ((unsigned char *)c)[5] = 0x99;
    cr_assert_eq(((unsigned char *)b)[GRANULE + 5], 0x99);
    CU_OK(cuMemRelease(h));
    sim_unmap(c, GRANULE);
    sim_unmap(b, 2 * GRANULE);
}

Test(sim_vmm, release_while_mapped_frees_at_unmap, .init = vram_8m)
{
    sim_start();
    CUmemGenericAllocationHandle h = sim_create(2 * GRANULE);
    CUdeviceptr a = sim_map(h, 2 * GRANULE);
    CU_OK(cuMemRelease(h));
    cr_assert_eq(simcuda_physical_in_use(0), 2 * GRANULE);
    ((char *)a)[0] = 1; /* still usable */
    sim_unmap(a, 2 * GRANULE);
    cr_assert_eq(simcuda_physical_in_use(0), 0);
    cr_assert_eq(cuMemRelease(h), CUDA_ERROR_INVALID_VALUE);
}

Test(sim_vmm, create_beyond_capacity_is_out_of_memory, .init = vram_8m)
{
    CU_OK(cuInit(0));
    CUmemAllocationProp prop = sim_prop(CU_MEM_LOCATION_TYPE_DEVICE, 0);
    CUmemGenericAllocationHandle h1, h2;
    CU_OK(cuMemCreate(&h1, 3 * GRANULE, &prop, 0));
    cr_assert_eq(cuMemCreate(&h2, 2 * GRANULE, &prop, 0), CUDA_ERROR_OUT_OF_MEMORY);
    CU_OK(cuMemCreate(&h2, GRANULE, &prop, 0));
    CU_OK(cuMemRelease(h1));
    CU_OK(cuMemCreate(&h1, 3 * GRANULE, &prop, 0));
}

Test(sim_vmm, host_numa_handles_use_the_host_budget, .init = vram_8m)
{
    sim_start();
    CUmemAllocationProp host = sim_prop(CU_MEM_LOCATION_TYPE_HOST_NUMA, 0);
    CUmemGenericAllocationHandle h1, h2;
    CU_OK(cuMemCreate(&h1, 2 * GRANULE, &host, 0));
    cr_assert_eq(cuMemCreate(&h2, GRANULE, &host, 0), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(simcuda_physical_in_use(0), 0, "host-NUMA memory is not device memory");
    size_t free_b, total_b;
    CU_OK(cuMemGetInfo_v2(&free_b, &total_b));
    cr_assert_eq(free_b, 8 * MiB);
    CUmemAllocationProp back;
    CU_OK(cuMemGetAllocationPropertiesFromHandle(&back, h1));
    cr_assert_eq(back.location.type, CU_MEM_LOCATION_TYPE_HOST_NUMA);
    host.location.id = 1;
    cr_assert_eq(cuMemCreate(&h2, GRANULE, &host, 0), CUDA_ERROR_INVALID_VALUE, "one NUMA node");
    CUmemAllocationProp plain = sim_prop(CU_MEM_LOCATION_TYPE_HOST, 0);
    plain.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    cr_assert_eq(cuMemCreate(&h2, GRANULE, &plain, 0), CUDA_ERROR_INVALID_VALUE,
                 "HOST allocations are not shareable");
    CU_OK(cuMemRelease(h1));
    plain.requestedHandleTypes = CU_MEM_HANDLE_TYPE_NONE;
    CU_OK(cuMemCreate(&h2, GRANULE, &plain, 0));
}

Test(sim_vmm, data_survives_a_device_to_host_numa_round_trip)
{
    sim_start();
    CUmemAllocationProp dprop = sim_prop(CU_MEM_LOCATION_TYPE_DEVICE, 0);
    CUmemAllocationProp hprop = sim_prop(CU_MEM_LOCATION_TYPE_HOST_NUMA, 0);
    CUmemGenericAllocationHandle dh, hh;
    CU_OK(cuMemCreate(&dh, GRANULE, &dprop, 0));
    CU_OK(cuMemCreate(&hh, GRANULE, &hprop, 0));
    CUdeviceptr d = sim_map(dh, GRANULE), h = sim_map(hh, GRANULE);
    for (size_t i = 0; i < GRANULE; i += 4096)
        ((unsigned char *)d)[i] = (unsigned char)(i >> 12);
    CU_OK(cuMemcpyDtoD_v2(h, d, GRANULE));
    /* Demote: the device handle goes, the data lives on in host-NUMA memory. */
    sim_unmap(d, GRANULE);
    CU_OK(cuMemRelease(dh));
    CU_OK(cuMemCreate(&dh, GRANULE, &dprop, 0));
    d = sim_map(dh, GRANULE);
    CU_OK(cuMemcpyDtoD_v2(d, h, GRANULE));
    for (size_t i = 0; i < GRANULE; i += 4096)
        cr_assert_eq(((unsigned char *)d)[i], (unsigned char)(i >> 12));
    unsigned int type;
    CU_OK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, h));
    cr_assert_eq(type, CU_MEMORYTYPE_HOST);
    CU_OK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d));
    cr_assert_eq(type, CU_MEMORYTYPE_DEVICE);
}

Test(sim_vmm, map_checks_alignment_bounds_and_overlap)
{
    sim_start();
    CUmemGenericAllocationHandle h = sim_create(2 * GRANULE);
    CUdeviceptr va;
    CU_OK(cuMemAddressReserve(&va, 4 * GRANULE, 0, 0, 0));
    cr_assert_eq(va % GRANULE, 0);
    cr_assert_eq(cuMemMap(va + 4096, GRANULE, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemMap(va, GRANULE, 4096, h, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemMap(va, 3 * GRANULE, 0, h, 0), CUDA_ERROR_INVALID_VALUE, "beyond the handle");
    cr_assert_eq(cuMemMap(va + 3 * GRANULE, 2 * GRANULE, 0, h, 0), CUDA_ERROR_INVALID_VALUE,
                 "beyond the reservation");
    cr_assert_eq(cuMemMap(va, GRANULE, 0, 0xdead, 0), CUDA_ERROR_INVALID_VALUE, "unknown handle");
    CU_OK(cuMemMap(va, 2 * GRANULE, 0, h, 0));
    cr_assert_eq(cuMemMap(va + GRANULE, GRANULE, 0, h, 0), CUDA_ERROR_INVALID_VALUE, "overlap");
    CU_OK(cuMemMap(va + 2 * GRANULE, GRANULE, GRANULE, h, 0));
    int host;
    cr_assert_eq(cuMemMap((CUdeviceptr)&host, GRANULE, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
}

Test(sim_vmm, unmap_must_cover_whole_mappings)
{
    sim_start();
    CUmemGenericAllocationHandle h = sim_create(2 * GRANULE);
    CUdeviceptr va;
    CU_OK(cuMemAddressReserve(&va, 4 * GRANULE, 0, 0, 0));
    CU_OK(cuMemMap(va, GRANULE, 0, h, 0));
    CU_OK(cuMemMap(va + GRANULE, GRANULE, GRANULE, h, 0));
    cr_assert_eq(cuMemUnmap(va + 2 * GRANULE, GRANULE), CUDA_ERROR_INVALID_VALUE, "not mapped");
    cr_assert_eq(cuMemUnmap(va, 3 * GRANULE), CUDA_ERROR_INVALID_VALUE, "runs past the mappings");
    cr_assert_eq(cuMemAddressFree(va, 4 * GRANULE), CUDA_ERROR_INVALID_VALUE, "still mapped");
    CU_OK(cuMemUnmap(va, 2 * GRANULE)); /* two adjacent mappings at once */
    cr_assert_eq(cuMemUnmap(va, GRANULE), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemAddressFree(va, 2 * GRANULE), CUDA_ERROR_INVALID_VALUE, "wrong size");
    CU_OK(cuMemAddressFree(va, 4 * GRANULE));
}

Test(sim_vmm, access_flags_are_reported_and_checked)
{
    sim_start();
    CUmemGenericAllocationHandle h = sim_create(GRANULE);
    CUdeviceptr va;
    CU_OK(cuMemAddressReserve(&va, GRANULE, 0, 0, 0));
    CU_OK(cuMemMap(va, GRANULE, 0, h, 0));
    CUmemLocation dev0 = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
    unsigned long long flags = 7;
    CU_OK(cuMemGetAccess(&flags, &dev0, va));
    cr_assert_eq(flags, CU_MEM_ACCESS_FLAGS_PROT_NONE);
    char buf[16] = {0};
    cr_assert_eq(cuMemcpyHtoD_v2(va, buf, sizeof buf), CUDA_ERROR_INVALID_VALUE,
                 "no access granted yet");
    CUmemAccessDesc ro = {dev0, CU_MEM_ACCESS_FLAGS_PROT_READ};
    CU_OK(cuMemSetAccess(va, GRANULE, &ro, 1));
    CU_OK(cuMemGetAccess(&flags, &dev0, va));
    cr_assert_eq(flags, CU_MEM_ACCESS_FLAGS_PROT_READ);
    cr_assert_eq(cuMemcpyHtoD_v2(va, buf, sizeof buf), CUDA_ERROR_INVALID_VALUE, "read-only");
    CU_OK(cuMemcpyDtoH_v2(buf, va, sizeof buf));
    CUmemAccessDesc bad = {{CU_MEM_LOCATION_TYPE_DEVICE, 5}, CU_MEM_ACCESS_FLAGS_PROT_READ};
    cr_assert_eq(cuMemSetAccess(va, GRANULE, &bad, 1), CUDA_ERROR_INVALID_DEVICE);
    cr_assert_eq(cuMemSetAccess(va, 2 * GRANULE, &ro, 1), CUDA_ERROR_INVALID_VALUE);
}

Test(sim_vmm, reserve_honours_alignment_and_a_free_hint)
{
    CU_OK(cuInit(0));
    CUdeviceptr va, va2;
    CU_OK(cuMemAddressReserve(&va, GRANULE, 64 * MiB, 0, 0));
    cr_assert_eq(va % (64 * MiB), 0);
    CU_OK(cuMemAddressFree(va, GRANULE));
    CU_OK(cuMemAddressReserve(&va2, GRANULE, 0, va, 0));
    cr_assert_eq(va2, va, "a free hinted address is used");
    cr_assert_eq(cuMemAddressReserve(&va, GRANULE, 3 * MiB, 0, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemAddressReserve(&va, 0, 0, 0, 0), CUDA_ERROR_INVALID_VALUE);
}

Test(sim_vmm, retain_allocation_handle_adds_a_reference, .init = vram_8m)
{
    sim_start();
    CUmemGenericAllocationHandle again, h = sim_create(GRANULE);
    CUdeviceptr va = sim_map(h, GRANULE);
    CU_OK(cuMemRetainAllocationHandle(&again, (void *)(va + 100)));
    cr_assert_eq(again, h);
    CU_OK(cuMemRelease(h));
    sim_unmap(va, GRANULE);
    cr_assert_eq(simcuda_physical_in_use(0), GRANULE, "the retained reference keeps it");
    CU_OK(cuMemRelease(again));
    cr_assert_eq(simcuda_physical_in_use(0), 0);
}

Test(sim_vmm, memalloc_memory_cannot_be_unmapped_by_the_program)
{
    sim_start();
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, GRANULE));
    cr_assert_eq(cuMemUnmap(p, GRANULE), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemAddressFree(p, GRANULE), CUDA_ERROR_INVALID_VALUE);
    CUmemGenericAllocationHandle h;
    cr_assert_eq(cuMemRetainAllocationHandle(&h, (void *)p), CUDA_ERROR_INVALID_VALUE);
    CUmemAccessDesc ro = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READ};
    cr_assert_eq(cuMemSetAccess(p, GRANULE, &ro, 1), CUDA_ERROR_INVALID_VALUE);
}
