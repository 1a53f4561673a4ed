/*
 * onednn.c — msbnb's one door into oneDNN (onednn.h): a matmul primitive per product shape,
 * created on first use and cached for the process, run single-threaded on the calling thread.
 *
 * Cache: a fixed table of CACHE_SLOTS entries (open addressing on the description, under a mutex
 * held only to look up or insert). Entries are never evicted: a model has a handful of layer shapes
 * and the tiled drivers a handful of tile shapes each; when the table is full a primitive is made
 * for the call and destroyed after it. An entry also remembers "unimplemented", so asking again
 * costs a lookup.
 *
 * Threads: oneDNN here is Debian's OpenMP build. While it creates or runs a primitive the calling
 * thread's OpenMP thread count is 1, so oneDNN neither spawns a team nor picks a blocking that
 * depends on msbnb's thread count; the callers split work in fixed blocks (see onednn.h).
 * Scratchpads are user-managed (allocated per call) so that one primitive may run on several
 * threads at once.
 */
#include "kernels/onednn.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_llong od_calls;
int64_t msbnb__od_calls(void) { return (int64_t)atomic_load(&od_calls); }

#if MSBNB_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define CACHE_SLOTS 512

typedef struct od_entry {
    int used;
    msbnb__od_gemm key;
    dnnl_primitive_t prim; /* NULL: oneDNN has no implementation for key */
    int exact;             /* S8: the probe found its integer sums exact (always 1 for f32 / bf16) */
    char impl[64];
} od_entry;

static od_entry cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_status_t engine_status = dnnl_runtime_error;

static void engine_init(void) { engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0); }

/* OpenMP thread count of the calling thread set to 1 around oneDNN calls (see above). */
static int single_thread_begin(void) {
#ifdef _OPENMP
    int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    return prev;
#else
    return 1;
#endif
}
static void single_thread_end(int prev) {
#ifdef _OPENMP
    omp_set_num_threads(prev);
#else
    (void)prev;
#endif
}

static int same_key(const msbnb__od_gemm *a, const msbnb__od_gemm *b) {
    return a->dt == b->dt && a->m == b->m && a->n == b->n && a->k == b->k && a->lda == b->lda && a->ldb == b->ldb &&
           a->ldc == b->ldc && a->trans_b == b->trans_b && a->accumulate == b->accumulate;
}

static uint64_t key_hash(const msbnb__od_gemm *g) {
    const int64_t v[9] = {g->dt, g->m, g->n, g->k, g->lda, g->ldb, g->ldc, g->trans_b, g->accumulate};
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 9; i++) h = (h ^ (uint64_t)v[i]) * 1099511628211ull;
    return h;
}

/* Creates the primitive for g (NULL + impl "unimplemented" when oneDNN has none). */
static dnnl_status_t create_prim(const msbnb__od_gemm *g, dnnl_primitive_t *prim, char impl[64]) {
    *prim = NULL;
    snprintf(impl, 64, "unimplemented");
    const dnnl_data_type_t dt = g->dt == MSBNB__OD_BF16 ? dnnl_bf16 : g->dt == MSBNB__OD_S8 ? dnnl_s8 : dnnl_f32;
    const dnnl_data_type_t dt_c = g->dt == MSBNB__OD_S8 ? dnnl_s32 : dnnl_f32;
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t da = {g->m, g->k}, sa = {g->lda, 1};
    dnnl_dims_t db = {g->k, g->n}, sb = {g->ldb, 1}; /* B [k][n], row stride ldb */
    if (g->trans_b) sb[0] = 1, sb[1] = g->ldb;         /* B [n][k] read as its transpose */
    dnnl_dims_t dc = {g->m, g->n}, sc = {g->ldc, 1};
    dnnl_status_t s = dnnl_memory_desc_init_by_strides(&a, 2, da, dt, sa);
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_strides(&b, 2, db, dt, sb);
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_strides(&c, 2, dc, dt_c, sc);
    dnnl_matmul_desc_t md;
    if (s == dnnl_success) s = dnnl_matmul_desc_init(&md, &a, &b, NULL, &c);
    if (s != dnnl_success) return s;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success) s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success && g->accumulate) {
        s = dnnl_post_ops_create(&po);
        if (s == dnnl_success) s = dnnl_post_ops_append_sum(po, 1.0f);
        if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    dnnl_primitive_desc_t pd = NULL;
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL);
    if (s == dnnl_success) {
        const char *name = NULL;
        if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success && name)
            snprintf(impl, 64, "%s", name);
        s = dnnl_primitive_create(prim, pd);
        if (s != dnnl_success) *prim = NULL;
    }
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return s == dnnl_unimplemented ? dnnl_success : s;
}

static int probe_s8(const msbnb__od_gemm *g, dnnl_primitive_t prim);

/* The cached entry for g (created on first use), or a private one in *tmp when the table is full
 * (the caller destroys tmp->prim). NULL with *st set when oneDNN failed. */
static const od_entry *lookup(const msbnb__od_gemm *g, od_entry *tmp, dnnl_status_t *st) {
    *st = dnnl_success;
    pthread_once(&engine_once, engine_init);
    if (engine_status != dnnl_success) {
        *st = engine_status;
        return NULL;
    }
    msbnb__od_gemm key = *g;
    pthread_mutex_lock(&cache_lock);
    uint64_t h = key_hash(&key);
    od_entry *e = NULL;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        od_entry *c = &cache[(h + (uint64_t)i) % CACHE_SLOTS];
        if (!c->used || same_key(&c->key, &key)) {
            e = c;
            break;
        }
    }
    if (e && e->used) {
        pthread_mutex_unlock(&cache_lock);
        return e;
    }
    od_entry *dst = e ? e : tmp;
    memset(dst, 0, sizeof *dst);
    dst->key = key;
    const int prev = single_thread_begin();
    *st = create_prim(&key, &dst->prim, dst->impl);
    single_thread_end(prev);
    dst->exact = 1;
    if (*st == dnnl_success && dst->prim && key.dt == MSBNB__OD_S8 && !(dst->exact = probe_s8(&key, dst->prim))) {
        const size_t len = strlen(dst->impl);
        snprintf(dst->impl + len, sizeof dst->impl - len, " (inexact here)");
    }
    if (*st == dnnl_success && e) e->used = 1;
    pthread_mutex_unlock(&cache_lock);
    return *st == dnnl_success ? dst : NULL;
}

/* Runs the primitive prim (created for g) on the calling thread, single-threaded. */
static msbnb_status execute(const msbnb__od_gemm *g, dnnl_primitive_t prim, const void *A, const void *B, void *C) {
    const_dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_get_primitive_desc(prim, &pd);
    const dnnl_memory_desc_t *ad = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *bd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *cd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *sd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    const size_t sbytes = sd ? dnnl_memory_desc_get_size(sd) : 0;
    void *scratch = sbytes ? msbnb__alloc_aligned(sbytes) : NULL;
    msbnb_status st = MSBNB_OK;
    if (sbytes && !scratch) st = MSBNB_FAIL(MSBNB_ERR_OUT_OF_MEMORY, "no memory for a %zu-byte oneDNN scratchpad", sbytes);
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL, ms = NULL;
    dnnl_stream_t stream = NULL;
    const int prev = single_thread_begin();
    dnnl_status_t s = dnnl_success;
    if (st == MSBNB_OK) {
        s = dnnl_memory_create(&ma, ad, engine, (void *)A);
        if (s == dnnl_success) s = dnnl_memory_create(&mb, bd, engine, (void *)B);
        if (s == dnnl_success) s = dnnl_memory_create(&mc, cd, engine, C);
        if (s == dnnl_success && sbytes) s = dnnl_memory_create(&ms, sd, engine, scratch);
        if (s == dnnl_success) s = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
        if (s == dnnl_success) {
            dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc},
                                       {DNNL_ARG_SCRATCHPAD, ms}};
            s = dnnl_primitive_execute(prim, stream, sbytes ? 4 : 3, args);
            atomic_fetch_add(&od_calls, 1);
            if (s == dnnl_success) s = dnnl_stream_wait(stream);
        }
        if (s != dnnl_success)
            st = MSBNB_FAIL(MSBNB_ERR_INTERNAL, "oneDNN matmul [%lld x %lld x %lld] failed (status %d)",
                            (long long)g->m, (long long)g->n, (long long)g->k, (int)s);
    }
    single_thread_end(prev);
    dnnl_stream_destroy(stream);
    dnnl_memory_destroy(ma);
    dnnl_memory_destroy(mb);
    dnnl_memory_destroy(mc);
    dnnl_memory_destroy(ms);
    msbnb__free_aligned(scratch);
    return st;
}

/* ---- S8 exactness probe (see onednn.h): worst-case codes of g's own shape, checked against int64
 * sums. A rows cycle through all +127, all -127, alternating signs and pseudo-random codes in
 * [-127, 127] (msbnb's activation codes); B columns through all +127, all -128, alternating and
 * pseudo-random codes in [-128, 127] (symmetric codes, and asymmetric ones shifted by 128). */
static int8_t probe_a(int64_t i, int64_t k) {
    switch (i & 3) {
    case 0: return 127;
    case 1: return -127;
    case 2: return (k & 1) ? -127 : 127;
    default: return (int8_t)((int)((uint64_t)(i * 7919 + k * 104729) % 255u) - 127);
    }
}
static int8_t probe_b(int64_t k, int64_t j) {
    switch (j & 3) {
    case 0: return 127;
    case 1: return -128;
    case 2: return (k & 1) ? -128 : 127;
    default: return (int8_t)((int)((uint64_t)(j * 6151 + k * 3571) % 256u) - 128);
    }
}

/* 1 when prim's sums equal the exact ones on the probe data, 0 when not (or out of memory, or g
 * accumulates). Rows checked: all when m·n·k ≤ 2²⁴, else the first and last four (every column). */
static int probe_s8(const msbnb__od_gemm *g, dnnl_primitive_t prim) {
    const int64_t brows = g->trans_b ? g->n : g->k;
    int8_t *A = msbnb__alloc_aligned((size_t)(g->m * g->lda));
    int8_t *B = msbnb__alloc_aligned((size_t)(brows * g->ldb));
    int32_t *C = msbnb__alloc_aligned((size_t)(g->m * g->ldc) * sizeof(int32_t));
    int exact = A && B && C && !g->accumulate; /* accumulating S8 products (sum post-op) are not used: not probed */
    if (exact) {
        memset(A, 0, (size_t)(g->m * g->lda));
        memset(B, 0, (size_t)(brows * g->ldb));
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t k = 0; k < g->k; k++) A[i * g->lda + k] = probe_a(i, k);
        for (int64_t k = 0; k < g->k; k++)
            for (int64_t j = 0; j < g->n; j++) B[g->trans_b ? j * g->ldb + k : k * g->ldb + j] = probe_b(k, j);
        exact = execute(g, prim, A, B, C) == MSBNB_OK; /* a failure here only makes the shape unused */
    }
    const int all = (double)g->m * (double)g->n * (double)g->k <= (double)(1 << 24);
    for (int64_t i = 0; exact && i < g->m; i++) {
        if (!all && i >= 4 && i < g->m - 4) continue;
        for (int64_t j = 0; exact && j < g->n; j++) {
            int64_t ref = 0;
            for (int64_t k = 0; k < g->k; k++) ref += (int64_t)probe_a(i, k) * probe_b(k, j);
            exact = ref == (int64_t)C[i * g->ldc + j];
        }
    }
    msbnb__free_aligned(A);
    msbnb__free_aligned(B);
    msbnb__free_aligned(C);
    return exact;
}

static atomic_int s8_accept_inexact;
int msbnb__od_s8_accept_inexact(int on) { return atomic_exchange(&s8_accept_inexact, on ? 1 : 0); }

/* The entry's primitive if it may run (S8: exact, or inexact accepted), else NULL. */
static dnnl_primitive_t runnable(const od_entry *e) {
    if (!e->prim) return NULL;
    if (e->key.dt == MSBNB__OD_S8 && !e->exact && !atomic_load(&s8_accept_inexact)) return NULL;
    return e->prim;
}

msbnb_status msbnb__od_run(const msbnb__od_gemm *g, const void *A, const void *B, void *C) {
    od_entry tmp;
    dnnl_status_t s;
    const od_entry *e = lookup(g, &tmp, &s);
    RETURN_IF(!e, MSBNB_ERR_INTERNAL, "oneDNN failed to create a [%lld x %lld x %lld] matmul (status %d)",
              (long long)g->m, (long long)g->n, (long long)g->k, (int)s);
    const dnnl_primitive_t prim = runnable(e);
    msbnb_status st = prim ? execute(g, prim, A, B, C) : MSBNB_ERR_UNSUPPORTED;
    if (e == &tmp) dnnl_primitive_destroy(tmp.prim);
    return st;
}

int msbnb__od_supported(const msbnb__od_gemm *g) {
    od_entry tmp;
    dnnl_status_t s;
    const od_entry *e = lookup(g, &tmp, &s);
    if (!e) return 0;
    const int ok = runnable(e) != NULL;
    if (e == &tmp) dnnl_primitive_destroy(tmp.prim);
    return ok;
}

const char *msbnb__od_impl(const msbnb__od_gemm *g) {
    od_entry tmp;
    dnnl_status_t s;
    const od_entry *e = lookup(g, &tmp, &s);
    if (!e) return "oneDNN error";
    if (e == &tmp) { /* table full: not kept, so no stable storage for its name */
        dnnl_primitive_destroy(tmp.prim);
        return "(not cached)";
    }
    return e->impl;
}

/* bf16 counts only with the CPU's own bf16 dot products (AVX512-BF16, which every AMX CPU has):
 * elsewhere oneDNN either has none (AVX2) or emulates them, and msbnb's FAST bf16 contract is
 * tied to the AVX512_BF16 level (tests compute its bound from the level). */
static int has_dt[MSBNB__OD_DTYPES] = {-1, -1, -1};
int msbnb__od_has(msbnb__od_dtype dt) {
    int v = __atomic_load_n(&has_dt[dt], __ATOMIC_RELAXED);
    if (v >= 0) return v;
    msbnb__od_gemm g = {dt, 64, 64, 64, 64, 64, 64, 1, 0};
    const char *impl = msbnb__od_impl(&g);
    v = strncmp(impl, "ref", 3) != 0 && strcmp(impl, "unimplemented") != 0 && strcmp(impl, "oneDNN error") != 0 &&
        !strstr(impl, "inexact");
    if (dt == MSBNB__OD_BF16 && !msbnb__cpu()->avx512bf16) v = 0;
    __atomic_store_n(&has_dt[dt], v, __ATOMIC_RELAXED);
    return v;
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

msbnb__od_class msbnb__od_cpu_class(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx2: return MSBNB__OD_AVX2;
    case dnnl_cpu_isa_avx2_vnni: return MSBNB__OD_AVX2_VNNI;
    case dnnl_cpu_isa_avx512_core: return MSBNB__OD_AVX512;
    case dnnl_cpu_isa_avx512_core_vnni:
    case dnnl_cpu_isa_avx512_core_bf16: return MSBNB__OD_AVX512_VNNI;
    case dnnl_cpu_isa_avx512_core_amx: return MSBNB__OD_AMX;
    default: return MSBNB__OD_NONE;
    }
}

static char version_buf[96];
static void fill_version(void) {
    const dnnl_version_t *v = dnnl_version();
    snprintf(version_buf, sizeof version_buf, "oneDNN %d.%d.%d (cpu isa %s)", v->major, v->minor, v->patch,
             isa_name(dnnl_get_effective_cpu_isa()));
}
const char *msbnb__od_version(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fill_version);
    return version_buf;
}

#else /* no oneDNN in this build */

msbnb_status msbnb__od_run(const msbnb__od_gemm *g, const void *A, const void *B, void *C) {
    (void)g, (void)A, (void)B, (void)C;
    return MSBNB_ERR_UNSUPPORTED;
}
int msbnb__od_s8_accept_inexact(int on) {
    (void)on;
    return 0;
}
msbnb__od_class msbnb__od_cpu_class(void) { return MSBNB__OD_NONE; }
int msbnb__od_supported(const msbnb__od_gemm *g) {
    (void)g;
    return 0;
}
const char *msbnb__od_impl(const msbnb__od_gemm *g) {
    (void)g;
    return "no oneDNN in this build";
}
int msbnb__od_has(msbnb__od_dtype dt) {
    (void)dt;
    return 0;
}
const char *msbnb__od_version(void) { return "no oneDNN in this build"; }

#endif

const char *msbnb__od_class_name(msbnb__od_class c) {
    static const char *const names[] = {"none", "avx2", "avx2_vnni", "avx512", "avx512_vnni", "amx"};
    return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "?";
}
