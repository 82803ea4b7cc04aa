/* Function names from an object's ELF symbol table (.symtab), for the addresses its dynamic
 * symbol table does not cover: static functions, executables linked without -rdynamic.
 *
 * The shim links no unwinding or ELF library (it must bring nothing into its host), so the
 * table is read here with <elf.h>. Each object's .symtab and .strtab are mapped read-only on
 * first use and kept: objects on call stacks are few, and an entry stays right after a dlclose
 * because it is keyed by path and load address. Every offset and size read from the file is
 * checked against the file's size before it is used. Thread-safe.
 */
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "allocator/trace_internal.h"

struct symtab {
    uintptr_t base; /* the object's load bias (l_addr) */
    char *path;
    const ElfW(Sym) *syms; /* NULL when the object has no readable .symtab */
    size_t nsyms;
    const char *strs;
    size_t strsz;
    struct symtab *next;
};

static pthread_mutex_t tables_lock = PTHREAD_MUTEX_INITIALIZER;
static struct symtab *tables;

/* [off, off + size) of fd mapped read-only; NULL when it cannot be. */
static const void *map_range(int fd, uint64_t off, uint64_t size)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), start = off - off % page;
    void *p = mmap(NULL, size + (off - start), PROT_READ, MAP_PRIVATE, fd, (off_t)start);
    return p == MAP_FAILED ? NULL : (const char *)p + (off - start);
}

static int in_file(uint64_t off, uint64_t size, uint64_t file_size)
{
    return size > 0 && off <= file_size && size <= file_size - off;
}

/* Finds .symtab and its string table in the file at path and maps both into t. */
static void load(struct symtab *t, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    ElfW(Ehdr) eh;
    ElfW(Shdr) *sh = NULL;
    if (fstat(fd, &st) != 0 || pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_shentsize != sizeof *sh ||
        !in_file(eh.e_shoff, (uint64_t)eh.e_shnum * sizeof *sh, (uint64_t)st.st_size))
        goto out;
    /* e_shnum is 16 bits: at most 4 MiB of headers. */
    size_t shbytes = (size_t)eh.e_shnum * sizeof *sh;
    if (!(sh = malloc(shbytes)) || pread(fd, sh, shbytes, (off_t)eh.e_shoff) != (ssize_t)shbytes)
        goto out;
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        const ElfW(Shdr) *sym = &sh[i];
        if (sym->sh_type != SHT_SYMTAB || sym->sh_entsize != sizeof(ElfW(Sym)) ||
            sym->sh_link >= eh.e_shnum)
            continue;
        const ElfW(Shdr) *str = &sh[sym->sh_link];
        if (str->sh_type != SHT_STRTAB ||
            !in_file(sym->sh_offset, sym->sh_size, (uint64_t)st.st_size) ||
            !in_file(str->sh_offset, str->sh_size, (uint64_t)st.st_size))
            break;
        t->syms = map_range(fd, sym->sh_offset, sym->sh_size);
        t->strs = map_range(fd, str->sh_offset, str->sh_size);
        if (t->syms && t->strs) {
            t->nsyms = sym->sh_size / sizeof(ElfW(Sym));
            t->strsz = str->sh_size;
        } else {
            t->syms = NULL;
        }
        break;
    }
out:
    free(sh);
    close(fd);
}

static const struct symtab *table_of(const struct link_map *lm)
{
    /* The main program's l_name is empty; its file is /proc/self/exe. */
    const char *path = lm->l_name && *lm->l_name ? lm->l_name : "/proc/self/exe";
    pthread_mutex_lock(&tables_lock);
    struct symtab *t = tables;
    while (t && (t->base != lm->l_addr || strcmp(t->path, path) != 0))
        t = t->next;
    if (!t && (t = calloc(1, sizeof *t))) {
        if ((t->path = strdup(path))) {
            t->base = lm->l_addr;
            load(t, path);
            t->next = tables;
            tables = t;
        } else {
            free(t);
            t = NULL;
        }
    }
    pthread_mutex_unlock(&tables_lock);
    return t;
}

int vs_elf_function_of(const struct link_map *lm, uintptr_t pc, char *name, size_t len,
                       uintptr_t *off)
{
    const struct symtab *t = table_of(lm);
    if (!t || !t->syms || pc < t->base)
        return -1;
    uintptr_t rel = pc - t->base;
    for (size_t i = 0; i < t->nsyms; i++) {
        const ElfW(Sym) *s = &t->syms[i];
        unsigned type = ELF64_ST_TYPE(s->st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s->st_shndx == SHN_UNDEF ||
            rel < s->st_value || rel - s->st_value >= s->st_size || s->st_name >= t->strsz)
            continue;
        const char *sname = t->strs + s->st_name;
        size_t n = strnlen(sname, t->strsz - s->st_name);
        if (n == t->strsz - s->st_name || n >= len)
            continue;
        memcpy(name, sname, n + 1);
        *off = rel - s->st_value;
        return 0;
    }
    return -1;
}
