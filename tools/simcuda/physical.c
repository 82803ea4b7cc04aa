/* simcuda physical memory: capacity accounting and slices of sparse memfd backings.
 *
 * Invariants:
 * - Each device has one memfd backing, host-NUMA memory another; a physical allocation is the
 *   slice [offset, offset+size) of its backing. Offsets are handed out once and never reused:
 *   a freed slice is hole-punched, so the file stays sparse and stale mappings read zeros.
 * - backing->used is the sum of live slices; creation fails with CUDA_ERROR_OUT_OF_MEMORY when
 *   used + size would exceed the capacity left after memory taken by other processes.
 * - A slice lives while it has a handle reference or a mapping (refs > 0).
 * - On a shared device (SIMCUDA_SHARED, shared.c) a device slice is also charged to this process
 *   in the shared segment when created and uncharged when it dies, if it was created in this
 *   process (a slice from before a fork() is the parent's charge); the shared charges, not
 *   backing->used, then decide what fits.
 * - After fork() the child's backings get new files (the old ones are MAP_SHARED with the parent):
 *   slices created before the fork keep their file (phys->fd != backing->fd) and are never
 *   punched by the child, whose frees then only return capacity; new slices go to the new file.
 * - All functions expect vs_sim_mem_lock held unless they are entry points.
 */
#include "sim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

pthread_mutex_t vs_sim_mem_lock = PTHREAD_MUTEX_INITIALIZER;

static struct vs_sim_phys *handles;
static uint64_t next_handle = 0x5000;

#define INITIAL_FILE_SIZE ((size_t)64 << 30)

/* Gives b a new, empty sparse file; on failure logs and leaves b->fd = -1. */
static int open_file(struct vs_sim_backing *b)
{
    b->fd = memfd_create(b->name, MFD_CLOEXEC);
    if (b->fd < 0 || ftruncate(b->fd, (off_t)INITIAL_FILE_SIZE) != 0) {
        vs_sim_log(VS_SIM_LOG_ERROR, "memfd %s: %s", b->name, strerror(errno));
        if (b->fd >= 0)
            close(b->fd);
        b->fd = -1;
        return -1;
    }
    b->file_size = INITIAL_FILE_SIZE;
    b->next_offset = 0;
    return 0;
}

struct vs_sim_backing *vs_sim_backing_create(const char *name, size_t capacity)
{
    struct vs_sim_backing *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->capacity = capacity;
    snprintf(b->name, sizeof b->name, "%s", name);
    if (open_file(b) != 0) {
        free(b);
        return NULL;
    }
    return b;
}

/* The parent's files stay open: slices created before the fork still live in them. A child left
 * without a file of its own cannot create memory (CUDA_ERROR_OUT_OF_MEMORY) rather than write
 * into the parent's. */
void vs_sim_backings_fork_child(void)
{
    for (int i = 0; i < VS_SIM_MAX_DEVICES; i++)
        if (vs_sim_devices[i].backing)
            open_file(vs_sim_devices[i].backing);
    if (vs_sim_host_backing)
        open_file(vs_sim_host_backing);
}

void vs_sim_phys_punch(const struct vs_sim_phys *phys, off_t at, size_t len)
{
    if (phys->fd != phys->backing->fd)
        return; /* created before fork(): the parent's data too */
    if (fallocate(phys->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, (off_t)len) != 0)
        vs_sim_log(VS_SIM_LOG_WARN, "punching %s: %s", phys->backing->name, strerror(errno));
}

/* Capacity of b less memory held by processes outside simcuda. */
static size_t backing_limit(const struct vs_sim_backing *b, size_t taken)
{
    return b->capacity > taken ? b->capacity - taken : 0;
}

size_t vs_sim_backing_free(const struct vs_sim_backing *b, size_t taken)
{
    size_t limit = backing_limit(b, taken);
    return limit > b->used ? limit - b->used : 0;
}

size_t vs_sim_device_free(const struct vs_sim_device *d)
{
    size_t taken = __atomic_load_n(&d->taken, __ATOMIC_RELAXED);
    if (!vs_sim_shared_enabled())
        return vs_sim_backing_free(d->backing, taken);
    size_t limit = backing_limit(d->backing, taken), used = vs_sim_shared_used(d->ordinal, 0);
    return limit > used ? limit - used : 0;
}

/* Whether phys counts in the shared segment as this process's charge. */
static bool shared_charge_of(const struct vs_sim_phys *phys)
{
    return phys->device && vs_sim_shared_enabled() && phys->fd == phys->backing->fd;
}

static CUresult location_backing(const CUmemLocation *loc, struct vs_sim_backing **backing,
                                 struct vs_sim_device **device)
{
    switch (loc->type) {
    case CU_MEM_LOCATION_TYPE_DEVICE:
        *device = vs_sim_device(loc->id);
        if (!*device)
            return CUDA_ERROR_INVALID_DEVICE;
        *backing = (*device)->backing;
        return CUDA_SUCCESS;
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
        if (loc->id != 0)
            return CUDA_ERROR_INVALID_VALUE; /* one NUMA node: 0 */
        /* fallthrough */
    case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT:
    case CU_MEM_LOCATION_TYPE_HOST:
        *device = NULL;
        *backing = vs_sim_host_backing;
        return CUDA_SUCCESS;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

static CUresult check_prop(const CUmemAllocationProp *prop, struct vs_sim_backing **backing,
                           struct vs_sim_device **device)
{
    if (prop->type != CU_MEM_ALLOCATION_TYPE_PINNED)
        return CUDA_ERROR_INVALID_VALUE;
    if (prop->requestedHandleTypes &
        ~(CUmemAllocationHandleType)CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
        return CUDA_ERROR_NOT_SUPPORTED;
    /* Plain HOST allocations cannot be shared between processes. */
    if (prop->location.type == CU_MEM_LOCATION_TYPE_HOST && prop->requestedHandleTypes)
        return CUDA_ERROR_INVALID_VALUE;
    return location_backing(&prop->location, backing, device);
}

CUresult vs_sim_phys_create(const CUmemAllocationProp *prop, size_t size, struct vs_sim_phys **out)
{
    struct vs_sim_backing *backing;
    struct vs_sim_device *device;
    CUresult rc = check_prop(prop, &backing, &device);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (size == 0 || size % VS_SIM_GRANULE)
        return CUDA_ERROR_INVALID_VALUE;
    size_t taken = device ? __atomic_load_n(&device->taken, __ATOMIC_RELAXED) : 0;
    bool shared = device && vs_sim_shared_enabled();
    if (backing->fd < 0 || (!shared && size > vs_sim_backing_free(backing, taken)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    if ((size_t)backing->next_offset + size > backing->file_size) {
        size_t want = backing->file_size * 2;
        while (want < (size_t)backing->next_offset + size)
            want *= 2;
        if (ftruncate(backing->fd, (off_t)want) != 0)
            return CUDA_ERROR_OUT_OF_MEMORY;
        backing->file_size = want;
    }
    struct vs_sim_phys *phys = calloc(1, sizeof *phys);
    if (!phys)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (shared) {
        CUresult rc = vs_sim_shared_charge(device->ordinal, size, backing_limit(backing, taken));
        if (rc != CUDA_SUCCESS) {
            free(phys);
            return rc;
        }
    }
    phys->id = next_handle++;
    phys->prop = *prop;
    phys->backing = backing;
    phys->fd = backing->fd;
    phys->device = device;
    phys->offset = backing->next_offset;
    phys->size = size;
    phys->handle_refs = 1;
    phys->refs = 1;
    backing->next_offset += (off_t)size;
    backing->used += size;
    HASH_ADD(hh, handles, id, sizeof phys->id, phys);
    *out = phys;
    return CUDA_SUCCESS;
}

struct vs_sim_phys *vs_sim_phys_lookup(uint64_t id)
{
    struct vs_sim_phys *phys;
    HASH_FIND(hh, handles, &id, sizeof id, phys);
    return phys;
}

void vs_sim_phys_ref(struct vs_sim_phys *phys)
{
    phys->refs++;
}

void vs_sim_phys_unref(struct vs_sim_phys *phys)
{
    if (--phys->refs > 0)
        return;
    HASH_DELETE(hh, handles, phys);
    vs_sim_phys_punch(phys, phys->offset, phys->size);
    if (shared_charge_of(phys))
        vs_sim_shared_uncharge(phys->device->ordinal, phys->size);
    phys->backing->used -= phys->size;
    free(phys);
}

/* Drops one handle reference (cuMemRelease, or the owner of an internal allocation). */
CUresult vs_sim_phys_release(struct vs_sim_phys *phys)
{
    if (phys->handle_refs == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (--phys->handle_refs == 0)
        vs_sim_phys_unref(phys);
    return CUDA_SUCCESS;
}

/* ---- entry points ---------------------------------------------------------------------------- */

CUresult CUDAAPI cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                             const CUmemAllocationProp *prop, unsigned long long flags)
{
    VS_SIM_ENTER("cuMemCreate");
    VS_SIM_REQUIRE_INIT();
    if (!handle || !prop || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_phys *phys;
    CUresult rc = vs_sim_phys_create(prop, size, &phys);
    if (rc == CUDA_SUCCESS)
        *handle = phys->id;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return rc;
}

CUresult CUDAAPI cuMemRelease(CUmemGenericAllocationHandle handle)
{
    VS_SIM_ENTER("cuMemRelease");
    VS_SIM_REQUIRE_INIT();
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_phys *phys = vs_sim_phys_lookup(handle);
    CUresult rc = phys ? vs_sim_phys_release(phys) : CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return rc;
}

CUresult CUDAAPI cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
                                                        CUmemGenericAllocationHandle handle)
{
    VS_SIM_ENTER("cuMemGetAllocationPropertiesFromHandle");
    VS_SIM_REQUIRE_INIT();
    if (!prop)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_phys *phys = vs_sim_phys_lookup(handle);
    if (phys && phys->handle_refs > 0)
        *prop = phys->prop;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return phys && phys->handle_refs > 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    VS_SIM_ENTER("cuMemRetainAllocationHandle");
    VS_SIM_REQUIRE_INIT();
    if (!handle)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_mapping *m = vs_sim_mapping_find((uintptr_t)addr);
    if (m && m->reservation->owner != VS_SIM_OWNER_USER)
        m = NULL; /* cuMemAlloc and pool memory has no handle for the program */
    if (m) {
        if (m->phys->handle_refs++ == 0)
            vs_sim_phys_ref(m->phys);
        *handle = m->phys->id;
    }
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return m ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
                                               CUmemAllocationGranularity_flags option)
{
    VS_SIM_ENTER("cuMemGetAllocationGranularity");
    VS_SIM_REQUIRE_INIT();
    if (!granularity || !prop)
        return CUDA_ERROR_INVALID_VALUE;
    if (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM &&
        option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_backing *backing;
    struct vs_sim_device *device;
    CUresult rc = check_prop(prop, &backing, &device);
    if (rc == CUDA_SUCCESS)
        *granularity = VS_SIM_GRANULE;
    return rc;
}

size_t simcuda_physical_in_use(int device)
{
    struct vs_sim_device *d = vs_sim_device(device);
    if (!d)
        return 0;
    pthread_mutex_lock(&vs_sim_mem_lock);
    size_t used = d->backing->used;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return used;
}

size_t simcuda_device_in_use(int device)
{
    struct vs_sim_device *d = vs_sim_device(device);
    if (!d || !vs_sim_shared_enabled())
        return simcuda_physical_in_use(device);
    pthread_mutex_lock(&vs_sim_mem_lock);
    size_t used = vs_sim_shared_used(device, 0);
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return used;
}

size_t simcuda_process_in_use(int device, pid_t pid)
{
    struct vs_sim_device *d = vs_sim_device(device);
    if (!d || pid <= 0)
        return 0;
    if (!vs_sim_shared_enabled())
        return pid == getpid() ? simcuda_physical_in_use(device) : 0;
    pthread_mutex_lock(&vs_sim_mem_lock);
    size_t used = vs_sim_shared_used(device, pid);
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return used;
}

size_t simcuda_host_physical_in_use(void)
{
    pthread_mutex_lock(&vs_sim_mem_lock);
    size_t used = vs_sim_host_backing ? vs_sim_host_backing->used : 0;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return used;
}

int simcuda_set_vram_taken(int device, size_t bytes)
{
    struct vs_sim_device *d = vs_sim_device(device);
    if (!d)
        return -1;
    __atomic_store_n(&d->taken, bytes, __ATOMIC_RELAXED);
    return 0;
}
