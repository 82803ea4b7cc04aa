/* simcuda devices: enumeration, names, memory size, attributes, UUID and PCI identity.
 *
 * Invariant: the simulated device presents itself as a compute capability 9.0 GPU with VMM,
 * host-NUMA VMM, memory pools and unified addressing, i.e. what the shim and cudart probe for.
 */
#include "sim.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

CUresult CUDAAPI cuDeviceGet(CUdevice *device, int ordinal)
{
    VS_SIM_ENTER("cuDeviceGet");
    VS_SIM_REQUIRE_INIT();
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vs_sim_device(ordinal))
        return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetCount(int *count)
{
    VS_SIM_ENTER("cuDeviceGetCount");
    VS_SIM_REQUIRE_INIT();
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    *count = vs_sim_cfg.devices;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetName(char *name, int len, CUdevice dev)
{
    VS_SIM_ENTER("cuDeviceGetName");
    VS_SIM_DEVICE_ENTRY(dev, d);
    if (!name || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, (size_t)len, "simcuda %zu GiB", d->total >> 30);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    VS_SIM_ENTER("cuDeviceTotalMem_v2");
    VS_SIM_DEVICE_ENTRY(dev, d);
    if (!bytes)
        return CUDA_ERROR_INVALID_VALUE;
    *bytes = d->total;
    return CUDA_SUCCESS;
}

/* The 32-bit form reports sizes above 4 GiB clamped, as old drivers did. */
CUresult CUDAAPI cuDeviceTotalMem(unsigned int *bytes, CUdevice dev)
{
    VS_SIM_ENTER("cuDeviceTotalMem");
    VS_SIM_DEVICE_ENTRY(dev, d);
    if (!bytes)
        return CUDA_ERROR_INVALID_VALUE;
    *bytes = d->total > UINT_MAX ? UINT_MAX : (unsigned int)d->total;
    return CUDA_SUCCESS;
}

static int attribute_value(CUdevice_attribute a, const struct vs_sim_device *d, int *value)
{
    switch (a) {
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *value = 9; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *value = 132; break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *value = 32; break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X:
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: *value = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: *value = 64; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: *value = INT_MAX; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y:
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: *value = 65535; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *value = 48 << 10; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *value = 227 << 10; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: *value = 228 << 10; break;
    case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK:
    case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR: *value = 65536; break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: *value = 2048; break;
    case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: *value = 64 << 10; break;
    case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: *value = 1755000; break;
    case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: *value = 2619000; break;
    case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: *value = 5120; break;
    case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *value = 50 << 20; break;
    case CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT: *value = 512; break;
    case CU_DEVICE_ATTRIBUTE_MAX_PITCH: *value = INT_MAX; break;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *value = d->ordinal + 1; break;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID:
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: *value = 2; break;
    case CU_DEVICE_ATTRIBUTE_GPU_OVERLAP:
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS:
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY:
    case CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY:
    case CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH:
    case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HOST_NUMA_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HOST_NUMA_MEMORY_POOLS_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES:
        *value = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
        break;
    case CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID:
    case CU_DEVICE_ATTRIBUTE_NUMA_ID: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_NUMA_CONFIG: *value = CU_DEVICE_NUMA_CONFIG_NONE; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_MODE: *value = CU_COMPUTEMODE_DEFAULT; break;
    default:
        if (a <= 0 || a >= CU_DEVICE_ATTRIBUTE_MAX)
            return -1;
        *value = 0; /* features the simulated device does not have */
    }
    return 0;
}

CUresult CUDAAPI cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    VS_SIM_ENTER("cuDeviceGetAttribute");
    VS_SIM_DEVICE_ENTRY(dev, d);
    if (!pi || attribute_value(attrib, d, pi) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
    VS_SIM_ENTER("cuDeviceComputeCapability");
    VS_SIM_DEVICE_ENTRY(dev, d);
    if (!major || !minor)
        return CUDA_ERROR_INVALID_VALUE;
    attribute_value(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d, major);
    attribute_value(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d, minor);
    return CUDA_SUCCESS;
}

static void fill_uuid(CUuuid *uuid, const struct vs_sim_device *d)
{
    static const char stem[16] = "simcuda-device-";
    memcpy(uuid->bytes, stem, sizeof uuid->bytes);
    uuid->bytes[15] = (char)d->ordinal;
}

CUresult CUDAAPI cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    VS_SIM_ENTER("cuDeviceGetUuid");
    VS_SIM_DEVICE_ENTRY(dev, d);
    if (!uuid)
        return CUDA_ERROR_INVALID_VALUE;
    fill_uuid(uuid, d);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
    VS_SIM_ENTER("cuDeviceGetUuid_v2");
    VS_SIM_DEVICE_ENTRY(dev, d);
    if (!uuid)
        return CUDA_ERROR_INVALID_VALUE;
    fill_uuid(uuid, d);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
    VS_SIM_ENTER("cuDeviceGetPCIBusId");
    VS_SIM_DEVICE_ENTRY(dev, d);
    if (!pciBusId || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    snprintf(pciBusId, (size_t)len, "0000:%02x:00.0", d->ordinal + 1);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev)
{
    VS_SIM_ENTER("cuDeviceCanAccessPeer");
    VS_SIM_DEVICE_ENTRY(dev, d);
    if (!canAccessPeer)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vs_sim_device(peerDev))
        return CUDA_ERROR_INVALID_DEVICE;
    *canAccessPeer = d->ordinal != peerDev;
    return CUDA_SUCCESS;
}
