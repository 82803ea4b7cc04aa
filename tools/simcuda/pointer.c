/* simcuda pointer queries: cuPointerGetAttribute and cuPointerGetAttributes.
 *
 * Invariants:
 * - A pointer is known when it lies in a live cuMemAlloc/pool allocation (the range is the
 *   allocation as requested, and so is the buffer ID, even when it shares a page), in a mapping
 *   of the program's own VMM reservation (the range is the mapping) or in page-locked host memory.
 *   Host-NUMA mappings and page-locked host memory report CU_MEMORYTYPE_HOST and device ordinal
 *   CU_DEVICE_CPU.
 * - Unknown pointers: cuPointerGetAttribute answers CUDA_ERROR_INVALID_VALUE, while
 *   cuPointerGetAttributes answers CUDA_SUCCESS with zeroed attributes, as the driver does.
 * - Booleans are written as bool, handle types and access flags as their enums.
 */
#include "sim.h"

#include <string.h>

struct info {
    bool known;
    CUcontext ctx;
    unsigned int memory_type;
    int ordinal;
    uintptr_t range_base, map_base;
    size_t range_size, map_size;
    unsigned long long buffer_id;
    CUmemoryPool pool;
    CUmemAllocationHandleType handle_types;
    CUDA_POINTER_ATTRIBUTE_ACCESS_FLAGS access;
};

static CUDA_POINTER_ATTRIBUTE_ACCESS_FLAGS pointer_access(CUmemAccess_flags f)
{
    if (f == CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
        return CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE;
    if (f == CU_MEM_ACCESS_FLAGS_PROT_READ)
        return CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READ;
    return CU_POINTER_ATTRIBUTE_ACCESS_FLAG_NONE;
}

static void lookup(uintptr_t ptr, struct info *in)
{
    memset(in, 0, sizeof *in);
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_mapping *m = vs_sim_mapping_find(ptr);
    struct vs_sim_alloc *a = vs_sim_alloc_find(ptr);
    if (m && vs_sim_address_range(ptr, &in->range_base, &in->range_size) == CUDA_SUCCESS) {
        in->known = true;
        in->map_base = m->range.base;
        in->map_size = m->range.size;
        in->buffer_id = m->buffer_id;
        in->handle_types = m->phys->prop.requestedHandleTypes;
        bool host = !m->phys->device;
        in->memory_type = host ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
        in->ordinal = host ? CU_DEVICE_CPU : m->phys->device->ordinal;
        CUmemAccess_flags f = host ? m->host_access : m->access[in->ordinal];
        in->access = pointer_access(f);
        if (a) {
            in->ctx = (CUcontext)a->ctx;
            in->pool = (CUmemoryPool)a->pool;
            in->buffer_id = a->buffer_id;
        }
    } else if (!m) {
        struct vs_sim_host *h = vs_sim_host_find(ptr);
        if (h) {
            in->known = true;
            in->ctx = (CUcontext)h->ctx;
            in->memory_type = CU_MEMORYTYPE_HOST;
            in->ordinal = CU_DEVICE_CPU;
            in->range_base = in->map_base = h->range.base;
            in->range_size = in->map_size = h->range.size;
            in->access = h->flags & CU_MEMHOSTREGISTER_READ_ONLY && h->registered
                             ? CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READ
                             : CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE;
        }
    }
    pthread_mutex_unlock(&vs_sim_mem_lock);
}

#define PUT(type, value) (*(type *)data = (type)(value))

/* Writes one attribute; singular: errors as cuPointerGetAttribute has them. */
static CUresult put(const struct info *in, uintptr_t ptr, CUpointer_attribute attr, void *data,
                    bool singular)
{
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: PUT(CUcontext, in->ctx); break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: PUT(unsigned int, in->memory_type); break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: PUT(CUdeviceptr, in->known ? ptr : 0); break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (singular && in->memory_type != CU_MEMORYTYPE_HOST)
            return CUDA_ERROR_INVALID_VALUE;
        PUT(void *, in->memory_type == CU_MEMORYTYPE_HOST ? ptr : 0);
        break;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: PUT(bool, false); break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: PUT(unsigned long long, in->buffer_id); break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE:
    case CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE: PUT(bool, false); break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: PUT(int, in->known ? in->ordinal : -2); break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: PUT(CUdeviceptr, in->range_base); break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE: PUT(size_t, in->range_size); break;
    case CU_POINTER_ATTRIBUTE_MAPPED: PUT(bool, in->known); break;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
        PUT(CUmemAllocationHandleType, in->handle_types);
        break;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
        PUT(CUDA_POINTER_ATTRIBUTE_ACCESS_FLAGS, in->access);
        break;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
        if (singular && !in->pool)
            return CUDA_ERROR_INVALID_VALUE;
        PUT(CUmemoryPool, in->pool);
        break;
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE: PUT(size_t, in->map_size); break;
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR: PUT(void *, in->map_base); break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    VS_SIM_ENTER("cuPointerGetAttribute");
    VS_SIM_REQUIRE_INIT();
    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    struct info in;
    lookup((uintptr_t)ptr, &in);
    if (!in.known)
        return CUDA_ERROR_INVALID_VALUE;
    return put(&in, (uintptr_t)ptr, attribute, data, true);
}

CUresult CUDAAPI cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes,
                                        void **data, CUdeviceptr ptr)
{
    VS_SIM_ENTER("cuPointerGetAttributes");
    VS_SIM_REQUIRE_INIT();
    if (!numAttributes || !attributes || !data)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned int i = 0; i < numAttributes; i++)
        if (!data[i])
            return CUDA_ERROR_INVALID_VALUE;
    struct info in;
    lookup((uintptr_t)ptr, &in);
    for (unsigned int i = 0; i < numAttributes; i++) {
        CUresult rc = put(&in, (uintptr_t)ptr, attributes[i], data[i], false);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    return CUDA_SUCCESS;
}
