/* gemv_ops_ubench.c — sustained throughput, on this core, of the vector instructions of the n = 1
 * streaming kernel (x86/matmul_4bit_avx512.c), alone and in the kernel's mix; the basis of the
 * roofline in docs/kernels.md. Not part of the CMake build (GNU inline assembly, x86-64 with
 * AVX-512 only):  gcc -O2 bench/gemv_ops_ubench.c -o gemv_ops_ubench && ./gemv_ops_ubench
 * Each loop body is straight-line assembly whose results are never read by the next operation
 * (no dependency chains) except the FMAs, which use 8 accumulators per iteration (latency 4, so 8
 * chains allow 2 per cycle). Cycles come from a dependent imul chain (latency 3 on every current
 * x86 core), timed with thread CPU time like the loops, so turbo is accounted for. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define ITERS 10000000L

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double core_hz(void) {
    uint64_t a = 1;
    double t = cpu_now();
    for (long i = 0; i < ITERS; i++)
        __asm__ volatile("imul %0,%0\n\timul %0,%0\n\timul %0,%0\n\timul %0,%0\n\t"
                         "imul %0,%0\n\timul %0,%0\n\timul %0,%0\n\timul %0,%0"
                         : "+r"(a));
    return 24.0 * ITERS / (cpu_now() - t);
}

static double hz;
#define RUN(name, ops, body)                                                                                \
    do {                                                                                                    \
        double t_ = cpu_now();                                                                              \
        for (long i_ = 0; i_ < ITERS; i_++) {                                                               \
            body;                                                                                           \
        }                                                                                                   \
        double cyc_ = (cpu_now() - t_) * hz / ITERS;                                                        \
        printf("%-58s %5.2f cycles/iter  %.2f ops/cycle\n", name, cyc_, (ops) / cyc_);                      \
    } while (0)

/* operand conventions: zmm29 index / codes, zmm30 table, zmm31 activations, zmm0-7 accumulators,
 * zmm8-15 scratch results; %0 points at 128 readable bytes */
#define PERM(d) "vpermps %%zmm30,%%zmm29," #d "\n\t"
#define SRL(d) "vpsrld $4,%%zmm29," #d "\n\t"
#define ZX(d) "vpmovzxwd (%0)," #d "\n\t"
#define FMA(d) "vfmadd231ps %%zmm30,%%zmm31," #d "\n\t"
#define MUL(d) "vmulps 64(%0)%{1to16%},%%zmm30," #d "\n\t"
#define CLOB "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", \
             "zmm12", "zmm13", "zmm14", "zmm15"
#define ASM(text) __asm__ volatile(text ::"r"(mem) : CLOB)
#define X8(M) M(%%zmm8) M(%%zmm9) M(%%zmm10) M(%%zmm11) M(%%zmm12) M(%%zmm13) M(%%zmm14) M(%%zmm15)
#define FMA8 FMA(%%zmm0) FMA(%%zmm1) FMA(%%zmm2) FMA(%%zmm3) FMA(%%zmm4) FMA(%%zmm5) FMA(%%zmm6) FMA(%%zmm7)
/* one 64-weight chunk of one row, as compiled: 1 vpmovzxwd, 1 vmulps (table x broadcast scale),
 * 3 vpsrld, 4 vpermps, 4 FMAs */
#define CHUNK(a, b, c, d)                                                                                     \
    ZX(%%zmm8) MUL(%%zmm9) SRL(%%zmm10) SRL(%%zmm11) SRL(%%zmm12) PERM(%%zmm13) PERM(%%zmm14) PERM(%%zmm15)  \
        PERM(%%zmm8) FMA(a) FMA(b) FMA(c) FMA(d)
#define CHUNK_NOSRL(a, b, c, d)                                                                               \
    ZX(%%zmm8) MUL(%%zmm9) PERM(%%zmm13) PERM(%%zmm14) PERM(%%zmm15) PERM(%%zmm8) FMA(a) FMA(b) FMA(c) FMA(d)
#define PERM_FMA(a, b, c, d) PERM(%%zmm13) PERM(%%zmm14) PERM(%%zmm15) PERM(%%zmm8) FMA(a) FMA(b) FMA(c) FMA(d)
/* FAST int8 kernel (x86/matmul_4bit_avx512vnni.c): zmm28 nibble mask, zmm27 byte table */
#define PSHUFB(d) "vpshufb %%zmm29,%%zmm27," #d "\n\t"
#define PAND(d) "vpandd %%zmm28,%%zmm29," #d "\n\t"
#define SRLW(d) "vpsrlw $4,%%zmm29," #d "\n\t"
#define DPBUSD(d) "vpdpbusd %%zmm29,%%zmm31," #d "\n\t"
#define CVT(d) "vcvtdq2ps %%zmm29," #d "\n\t"
#define LOAD(d) "vmovdqu64 (%0)," #d "\n\t"
#define DP8 DPBUSD(%%zmm0) DPBUSD(%%zmm1) DPBUSD(%%zmm2) DPBUSD(%%zmm3) DPBUSD(%%zmm4) DPBUSD(%%zmm5) DPBUSD(%%zmm6) DPBUSD(%%zmm7)
/* one 64-byte chunk pair of one row: 1 shift, 2 and, 2 vpshufb, 2 vpdpbusd, 1 cvt, 1 vpermps, 1 FMA */
#define PAIR(a, b, c)                                                                                         \
    SRLW(%%zmm8) PAND(%%zmm9) PAND(%%zmm10) PSHUFB(%%zmm11) PSHUFB(%%zmm12) DPBUSD(a) DPBUSD(b) CVT(%%zmm13)   \
        PERM(%%zmm14) FMA(c)
#define LO(M) M(%%zmm0, %%zmm1, %%zmm2, %%zmm3)
#define HI(M) M(%%zmm4, %%zmm5, %%zmm6, %%zmm7)

int main(void) {
    static const float buf[32] __attribute__((aligned(64)));
    const float *mem = buf;
    hz = core_hz();
    printf("core clock %.2f GHz (dependent imul chain)\n", hz / 1e9);
    RUN("vpermps zmm", 8, ASM(X8(PERM)));
    RUN("vpsrld zmm", 8, ASM(X8(SRL)));
    RUN("vpmovzxwd zmm, m256", 8, ASM(X8(ZX)));
    RUN("vfmadd231ps zmm (8 accumulators)", 8, ASM(FMA8));
    RUN("8 vpermps + 8 vpsrld", 16, ASM(X8(PERM) X8(SRL)));
    RUN("8 vpermps + 8 vfmadd231ps", 16, ASM(X8(PERM) FMA8));
    RUN("8 vpsrld + 8 vfmadd231ps", 16, ASM(X8(SRL) FMA8));
    RUN("2 chunks: 4 perm + 4 fma each (decode-free floor)", 16, ASM(LO(PERM_FMA) HI(PERM_FMA)));
    RUN("2 chunks as compiled: 1 zx 1 mul 3 srl 4 perm 4 fma each", 26, ASM(LO(CHUNK) HI(CHUNK)));
    RUN("2 chunks without the 3 srl", 20, ASM(LO(CHUNK_NOSRL) HI(CHUNK_NOSRL)));
    RUN("vpshufb zmm", 8, ASM(X8(PSHUFB)));
    RUN("vpandd zmm", 8, ASM(X8(PAND)));
    RUN("vpsrlw zmm", 8, ASM(X8(SRLW)));
    RUN("vpdpbusd zmm (8 accumulators)", 8, ASM(DP8));
    RUN("vcvtdq2ps zmm", 8, ASM(X8(CVT)));
    RUN("vmovdqu64 zmm load", 8, ASM(X8(LOAD)));
    RUN("8 vpshufb + 8 vpdpbusd", 16, ASM(X8(PSHUFB) DP8));
    RUN("4 pairs as in the FAST kernel (10 ops each)", 40,
        ASM(PAIR(%%zmm0, %%zmm1, %%zmm4) PAIR(%%zmm2, %%zmm3, %%zmm5) PAIR(%%zmm0, %%zmm1, %%zmm6)
                PAIR(%%zmm2, %%zmm3, %%zmm7)));
    return 0;
}
