/* simcuda memory I/O: copies and fills between host memory and device ranges, done with
 * pread/pwrite on the backing memfds so that unwritten ranges stay unwritten.
 *
 * Invariants:
 * - Device ranges are never touched through their mappings here: reading a hole of a MAP_SHARED
 *   shmem mapping would allocate a page, and the mapping may lack host protection.
 * - A hole in the source becomes a hole in a device destination (punched, partial pages zeroed
 *   only where they hold data), except within CHUNK after written data (run_at); only host
 *   destinations are written with zeros.
 * - fd I/O is safe even if the range is unmapped concurrently (the memfd outlives any mapping).
 */
#include "sim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE ((size_t)4096)
#define CHUNK ((size_t)1 << 20)

static bool access_ok(const struct vs_sim_mapping *m, bool need_write)
{
    CUmemAccess_flags want = need_write ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE
                                        : CU_MEM_ACCESS_FLAGS_PROT_READ;
    if (m->host_access >= want)
        return true;
    for (int d = 0; d < VS_SIM_MAX_DEVICES; d++)
        if (m->access[d] >= want)
            return true;
    return false;
}

CUresult vs_sim_side_resolve(uintptr_t addr, size_t len, bool need_write, bool must_be_device,
                             struct vs_sim_side *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&vs_sim_mem_lock);
    CUresult rc = CUDA_SUCCESS;
    struct vs_sim_mapping *m = vs_sim_mapping_find(addr);
    if (!m) {
        /* Inside a reservation but unmapped is a bad device address; elsewhere it is host memory.
         */
        if (must_be_device || vs_sim_reservation_find(addr) || !addr)
            rc = CUDA_ERROR_INVALID_VALUE;
        else
            out->host = (uint8_t *)addr;
        goto done;
    }
    out->device = true;
    uintptr_t at = addr, end = addr + len;
    if (end < addr) {
        rc = CUDA_ERROR_INVALID_VALUE;
        goto done;
    }
    while (at < end) {
        if (!m || !access_ok(m, need_write)) {
            rc = CUDA_ERROR_INVALID_VALUE;
            goto done;
        }
        struct vs_sim_extent *grown = realloc(out->extents, (out->count + 1) * sizeof *grown);
        if (!grown) {
            rc = CUDA_ERROR_OUT_OF_MEMORY;
            goto done;
        }
        out->extents = grown;
        size_t skip = at - m->range.base;
        size_t piece = m->range.size - skip;
        if (piece > end - at)
            piece = end - at;
        out->extents[out->count++] = (struct vs_sim_extent){
            m->phys->fd, m->phys->offset + (off_t)(m->phys_offset + skip), piece};
        at += piece;
        if (at < end)
            m = vs_sim_mapping_find(at);
    }
done:
    pthread_mutex_unlock(&vs_sim_mem_lock);
    if (rc != CUDA_SUCCESS)
        vs_sim_side_free(out);
    return rc;
}

void vs_sim_side_free(struct vs_sim_side *side)
{
    free(side->extents);
    side->extents = NULL;
    side->count = 0;
}

/* Repeats pread/pwrite until all len bytes moved; -1 on error or end of file. */
static int pio_all(int fd, uint8_t *buf, size_t len, off_t off, bool writing)
{
    while (len) {
        ssize_t n = writing ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

static int pwrite_all(int fd, const uint8_t *buf, size_t len, off_t off)
{
    return pio_all(fd, (uint8_t *)buf, len, off, true); /* pwrite only reads buf */
}

static int pread_all(int fd, uint8_t *buf, size_t len, off_t off)
{
    return pio_all(fd, buf, len, off, false);
}

/* Length of the data or hole run starting at off, at most len. A data run is reported at most
 * CHUNK at a time and without SEEK_HOLE: the kernel's SEEK_HOLE walks every page up to the next
 * hole in the file, possibly far past len (device slices lie back to back in one memfd), which
 * made each copied piece cost as much as all the data written after it. */
static size_t run_at(int fd, off_t off, size_t len, bool *is_data)
{
    off_t data = lseek(fd, off, SEEK_DATA);
    if (data < 0 || (size_t)(data - off) >= len) {
        *is_data = false;
        return len;
    }
    if (data > off) {
        *is_data = false;
        return (size_t)(data - off);
    }
    *is_data = true;
    return len < CHUNK ? len : CHUNK;
}

/* Zeroes a range shorter than two pages without allocating pages that are holes already. */
static int zero_partial(int fd, off_t off, size_t len)
{
    static const uint8_t zeros[PAGE];
    bool data;
    if (run_at(fd, off, len, &data) == len && !data)
        return 0;
    for (size_t done = 0; done < len; done += PAGE)
        if (pwrite_all(fd, zeros, len - done < PAGE ? len - done : PAGE, off + (off_t)done) != 0)
            return -1;
    return 0;
}

/* Punches [offset, offset+len): whole pages by hole punching, partial edge pages that hold data
 * by writing zeros. */
static int punch_zero(int fd, off_t offset, size_t len)
{
    off_t end = offset + (off_t)len;
    off_t first_page = (offset + (off_t)PAGE - 1) & ~(off_t)(PAGE - 1);
    off_t last_page = end & ~(off_t)(PAGE - 1);
    if (first_page >= last_page) /* within one or two partial pages */
        return zero_partial(fd, offset, len);
    if (first_page > offset && zero_partial(fd, offset, (size_t)(first_page - offset)) != 0)
        return -1;
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, first_page,
                  last_page - first_page) != 0)
        return -1;
    if (end > last_page && zero_partial(fd, last_page, (size_t)(end - last_page)) != 0)
        return -1;
    return 0;
}

/* Position inside a side: extent index and offset in it (host sides use `pos` only). */
struct cursor {
    const struct vs_sim_side *side;
    size_t index, offset, pos;
};

static size_t cursor_span(const struct cursor *c, size_t want)
{
    if (!c->side->device)
        return want;
    size_t left = c->side->extents[c->index].len - c->offset;
    return left < want ? left : want;
}

static void cursor_advance(struct cursor *c, size_t n)
{
    c->pos += n;
    if (!c->side->device)
        return;
    c->offset += n;
    if (c->offset == c->side->extents[c->index].len) {
        c->index++;
        c->offset = 0;
    }
}

static int dev_fd(const struct cursor *c, off_t *off)
{
    const struct vs_sim_extent *e = &c->side->extents[c->index];
    *off = e->offset + (off_t)c->offset;
    return e->fd;
}

/* Copies len bytes between two memfds inside the kernel (one copy instead of pread and pwrite
 * through a buffer); -1 when the kernel cannot (then nothing or part was copied, and the caller
 * copies the whole range again). */
static int file_copy(int sfd, off_t soff, int dfd, off_t doff, size_t len)
{
    while (len) {
        ssize_t n = copy_file_range(sfd, &soff, dfd, &doff, len, 0);
        if (n <= 0)
            return -1;
        len -= (size_t)n;
    }
    return 0;
}

static int copy_piece(struct cursor *dst, struct cursor *src, size_t n, uint8_t *bounce)
{
    off_t doff = 0, soff = 0;
    int dfd = dst->side->device ? dev_fd(dst, &doff) : -1;
    if (!src->side->device) {
        const uint8_t *from = src->side->host + src->pos;
        if (!dst->side->device) {
            memmove(dst->side->host + dst->pos, from, n);
            return 0;
        }
        return pwrite_all(dfd, from, n, doff);
    }
    int sfd = dev_fd(src, &soff);
    size_t done = 0;
    while (done < n) {
        bool data;
        size_t run = run_at(sfd, soff + (off_t)done, n - done, &data);
        if (!data) {
            if (!dst->side->device)
                memset(dst->side->host + dst->pos + done, 0, run);
            else if (punch_zero(dfd, doff + (off_t)done, run) != 0)
                return -1;
        } else if (!dst->side->device) {
            if (pread_all(sfd, dst->side->host + dst->pos + done, run, soff + (off_t)done) != 0)
                return -1;
        } else if (file_copy(sfd, soff + (off_t)done, dfd, doff + (off_t)done, run) != 0) {
            for (size_t k = 0; k < run;) {
                size_t step = run - k < CHUNK ? run - k : CHUNK;
                if (pread_all(sfd, bounce, step, soff + (off_t)(done + k)) != 0 ||
                    pwrite_all(dfd, bounce, step, doff + (off_t)(done + k)) != 0)
                    return -1;
                k += step;
            }
        }
        done += run;
    }
    return 0;
}

int vs_sim_side_copy(const struct vs_sim_side *dst, const struct vs_sim_side *src, size_t len)
{
    uint8_t *bounce = NULL;
    if (dst->device && src->device && !(bounce = malloc(CHUNK)))
        return -1;
    struct cursor d = {.side = dst}, s = {.side = src};
    int rc = 0;
    while (rc == 0 && d.pos < len) {
        size_t n = cursor_span(&s, cursor_span(&d, len - d.pos));
        rc = copy_piece(&d, &s, n, bounce);
        cursor_advance(&d, n);
        cursor_advance(&s, n);
    }
    free(bounce);
    return rc;
}

int vs_sim_side_fill(const struct vs_sim_side *dst, uint32_t value, size_t elem_size, size_t len)
{
    if (!dst->device) {
        for (size_t i = 0; i < len; i += elem_size)
            memcpy(dst->host + i, &value, elem_size);
        return 0;
    }
    uint8_t *pattern = NULL;
    if (value) {
        if (!(pattern = malloc(CHUNK)))
            return -1;
        for (size_t i = 0; i < CHUNK; i += elem_size)
            memcpy(pattern + i, &value, elem_size);
    }
    int rc = 0;
    for (size_t e = 0; rc == 0 && e < dst->count; e++) {
        const struct vs_sim_extent *x = &dst->extents[e];
        if (!value) {
            rc = punch_zero(x->fd, x->offset, x->len);
            continue;
        }
        for (size_t k = 0; rc == 0 && k < x->len; k += CHUNK)
            rc = pwrite_all(x->fd, pattern, x->len - k < CHUNK ? x->len - k : CHUNK,
                            x->offset + (off_t)k);
    }
    free(pattern);
    return rc;
}
