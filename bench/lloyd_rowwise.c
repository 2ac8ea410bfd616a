/* The wide-row Lloyd kernel alone (lloyd_rows.h's gmm_lloyd_rowwise), one thread, in
   CPU time: on a shared machine the thread's own CPU time moves far less than wall
   time, and a C build takes seconds where the package takes minutes, so variants of
   the kernel can be compared in a loop. Prints, per type, the best of REPS calls over
   N random rows (d=784, k=10) without and with the centre sums, a hash of the labels
   and a weighted checksum of the sums (equal hashes: bitwise the same results).
   Build at the AVX2 level, as meson.build builds kernels.c:

     gcc -O3 -march=x86-64-v3 -fno-trapping-math -fopenmp-simd -DGMM_KERNEL_TABLE=tbl \
         -Isrc/gmm_fast bench/lloyd_rowwise.c -o /tmp/lloyd_rowwise -lm

   (-DN=2000 -DREPS=200: rows that stay in cache, the dot products' own speed).

   Measured at fb86f67 (AVX2 Zen 3 at 2.45 GHz, load ~2.6), ms per 1e5 rows without
   the sums for k = 2, 4, 8, 10, 12 centres: float32 23.6, 24.7, 32.3, 36.9, 38.0;
   float64 50.0, 53.6, 69.0, 84.4, 85.3. So, for d=784 k=10: each block of 4 centres
   7.6 (float32) / 15.4 (float64), about the FMA peak in float32; the last pair of
   k=10 (k_pad 4+4+2) costs a whole block; ~17 / ~38 for copying the shifted rows and
   reading X, of which ~10 / ~23 is DRAM time not hidden behind the products (rows in
   cache, k=4 and 8: blocks 8 / 18.5, the rest 7.5 / 15); the centre sums ~13 / ~13.
   A feature-chunked variant (4-8 row groups sharing each centre chunk of 512-2048
   bytes in L1, bitwise the same labels) was slower at every size: 48-59 / 90-114.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.c"

#ifndef N
#define N 100000
#endif
#ifndef REPS
#define REPS 7
#endif

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Random rows in [0, 1), centres taken from rows, the buffers as _lloyd lays them out. */
#define GMM_TIME_ROWWISE(T)                                                          \
    do {                                                                             \
        ptrdiff_t n = N, d = 784, k = 10, d_pad = GMM_LLOYD_PAD_FEATURES(d), k_pad = 12; \
        T *X = malloc(sizeof(T) * n * d), *shift = calloc(d, sizeof(T));            \
        T *c = malloc(sizeof(T) * k * d), *c_m2 = calloc(k_pad * d_pad, sizeof(T));  \
        T *sq = malloc(sizeof(T) * k_pad);                                          \
        T *xs = calloc(GMM_LLOYD_WIDE_ROWS * d_pad, sizeof(T));                      \
        int *labels = calloc(n, sizeof(int));                                        \
        double *sums = calloc(k * d, sizeof(double)), *counts = calloc(k, sizeof(double)); \
        ptrdiff_t changed;                                                           \
        srand(1);                                                                    \
        for (ptrdiff_t i = 0; i < n * d; i++) X[i] = (T)rand() / RAND_MAX;           \
        for (ptrdiff_t j = 0; j < k_pad; j++) {                                      \
            double s = 0;                                                            \
            for (ptrdiff_t f = 0; j < k && f < d; f++) {                             \
                c[j * d + f] = X[(j * 97) * d + f];                                  \
                c_m2[j * d_pad + f] = -2 * c[j * d + f];                             \
                s += c[j * d + f] * c[j * d + f];                                    \
            }                                                                        \
            sq[j] = j < k ? (T)s : (T)INFINITY;                                      \
        }                                                                            \
        for (int with_sums = 0; with_sums < 2; with_sums++) {                        \
            double best = 1e9, check = 0;                                            \
            unsigned long hash = 0;                                                  \
            for (int rep = 0; rep < REPS; rep++) {                                   \
                memset(sums, 0, k * d * sizeof(double));                             \
                double start = cpu_seconds();                                        \
                gmm_lloyd_rowwise_##T(X, NULL, shift, n, d, c, c_m2, sq, k, labels,  \
                                      with_sums ? sums : NULL,                       \
                                      with_sums ? counts : NULL, xs, &changed, 0);  \
                double t = cpu_seconds() - start;                                    \
                best = t < best ? t : best;                                          \
            }                                                                        \
            for (ptrdiff_t i = 0; i < n; i++) hash = hash * 31 + labels[i];          \
            for (ptrdiff_t i = 0; i < k * d; i++) check += sums[i] * (i % 7 + 1);    \
            printf(#T " sums=%d %.2f ms (labels hash %lx, sums check %.17g)\n",       \
                   with_sums, 1e3 * best, hash, check);                              \
        }                                                                            \
        free(X); free(shift); free(c); free(c_m2); free(sq); free(xs);               \
        free(labels); free(sums); free(counts);                                      \
    } while (0)

int main(void) {
    GMM_TIME_ROWWISE(float);
    GMM_TIME_ROWWISE(double);
    return 0;
}
