/* simcuda call counters and fault injection.
 *
 * Invariants:
 * - Every exported entry point owns one static vs_sim_entry, linked into `entries` on its first
 *   call; a symbol never called has count 0.
 * - A fault counts calls of its symbol from the moment it is armed (process start for
 *   SIMCUDA_FAIL) and fires once, on exactly the nth call, which then does nothing else.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fault {
    char name[64];
    unsigned long remaining;
    CUresult err;
    struct fault *next;
};

pthread_mutex_t vs_sim_fault_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vs_sim_entry *entries;
static struct fault *faults;
static int armed; /* atomic: number of faults pending */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void arm(const char *name, size_t name_len, unsigned long nth, CUresult err)
{
    struct fault *f = calloc(1, sizeof *f);
    if (!f)
        return;
    if (name_len >= sizeof f->name)
        name_len = sizeof f->name - 1;
    memcpy(f->name, name, name_len);
    f->remaining = nth;
    f->err = err;
    pthread_mutex_lock(&vs_sim_fault_lock);
    f->next = faults;
    faults = f;
    __atomic_add_fetch(&armed, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&vs_sim_fault_lock);
}

static bool env_bad;

static int parse_spec(const char *spec)
{
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[160];
        if (len == 0 || len >= sizeof item)
            goto bad;
        memcpy(item, p, len);
        item[len] = 0;
        char *colon = strchr(item, ':');
        if (!colon || colon == item)
            goto bad;
        char *num_end;
        unsigned long nth = strtoul(colon + 1, &num_end, 10);
        if (num_end == colon + 1 || nth == 0 || (*num_end && *num_end != ':'))
            goto bad;
        CUresult err = CUDA_ERROR_OUT_OF_MEMORY;
        if (*num_end == ':') {
            int named = vs_sim_error_from_name(num_end + 1);
            if (named < 0) {
                vs_sim_log(VS_SIM_LOG_ERROR, "SIMCUDA_FAIL=\"%s\": unknown error name \"%s\"",
                           spec, num_end + 1);
                return -1;
            }
            err = (CUresult)named;
        }
        arm(item, (size_t)(colon - item), nth, err);
        p += len;
        if (*p == ',')
            p++;
        continue;
    bad:
        vs_sim_log(
            VS_SIM_LOG_ERROR,
            "SIMCUDA_FAIL=\"%s\": entry \"%.*s\" is not name:nth[:CUDA_ERROR_NAME] with nth >= 1",
            spec, (int)len, p);
        return -1;
    }
    return 0;
}

static void load_env(void)
{
    const char *spec = getenv("SIMCUDA_FAIL");
    if (spec && parse_spec(spec) != 0)
        env_bad = true;
}

bool vs_sim_fault_env_ok(void)
{
    pthread_once(&env_once, load_env);
    return !env_bad;
}

static CUresult consume(const char *name)
{
    CUresult err = CUDA_SUCCESS;
    pthread_mutex_lock(&vs_sim_fault_lock);
    for (struct fault **pf = &faults; *pf;) {
        struct fault *f = *pf;
        if (strcmp(f->name, name) == 0 && --f->remaining == 0 && err == CUDA_SUCCESS) {
            err = f->err;
            *pf = f->next;
            free(f);
            __atomic_sub_fetch(&armed, 1, __ATOMIC_RELEASE);
            continue;
        }
        pf = &f->next;
    }
    pthread_mutex_unlock(&vs_sim_fault_lock);
    if (err != CUDA_SUCCESS)
        vs_sim_log(VS_SIM_LOG_INFO, "%s: injected %s", name, vs_sim_error_name(err));
    return err;
}

CUresult vs_sim_enter(struct vs_sim_entry *entry)
{
    pthread_once(&env_once, load_env);
    if (!__atomic_load_n(&entry->registered, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&vs_sim_fault_lock);
        if (!entry->registered) {
            entry->next = entries;
            entries = entry;
            __atomic_store_n(&entry->registered, 1, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&vs_sim_fault_lock);
    }
    __atomic_add_fetch(&entry->calls, 1, __ATOMIC_RELAXED);
    if (vs_sim_log_enabled(VS_SIM_LOG_DEBUG))
        vs_sim_log(VS_SIM_LOG_DEBUG, "call %s", entry->name);
    if (__atomic_load_n(&armed, __ATOMIC_ACQUIRE) == 0)
        return CUDA_SUCCESS;
    return consume(entry->name);
}

/* Calls of `symbol`, or of every entry point for NULL. */
static unsigned long count_calls(const char *symbol)
{
    unsigned long n = 0;
    pthread_mutex_lock(&vs_sim_fault_lock);
    for (struct vs_sim_entry *e = entries; e; e = e->next)
        if (!symbol || strcmp(e->name, symbol) == 0)
            n += __atomic_load_n(&e->calls, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&vs_sim_fault_lock);
    return n;
}

unsigned long simcuda_call_count(const char *symbol)
{
    return symbol ? count_calls(symbol) : 0;
}

unsigned long simcuda_call_total(void)
{
    return count_calls(NULL);
}

void simcuda_reset_call_counts(void)
{
    pthread_mutex_lock(&vs_sim_fault_lock);
    for (struct vs_sim_entry *e = entries; e; e = e->next)
        __atomic_store_n(&e->calls, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&vs_sim_fault_lock);
}

int simcuda_fail_call(const char *symbol, unsigned long nth, CUresult err)
{
    if (!symbol || nth == 0)
        return -1;
    pthread_once(&env_once, load_env);
    arm(symbol, strlen(symbol), nth, err);
    return 0;
}
