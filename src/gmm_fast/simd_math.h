/* exp and log written so that a loop of them vectorises at every CPU level.

   glibc's exp and log are calls the vectoriser cannot see through. These are a few
   multiply-adds and bit moves with selects, no branches, inlined into the loops of
   kernels.c. With -fno-trapping-math (meson.build) GCC may compute both sides of a
   select; without it, it keeps a branch around the multiplies that could trap and
   vectorises only where AVX-512 masks the lanes ("control flow in loop" at
   x86-64-v3 and baseline). `single` (float32 data, whose values carry 6e-8 relative
   error) picks shorter polynomials; callers pass a constant so that it folds away.
*/
#ifndef GMM_SIMD_MATH_H
#define GMM_SIMD_MATH_H

#include <stdint.h>
#include <string.h>

/* sum_j c[j] x^(n-1-j) by Horner's rule (c: highest power first). Inlined with a
   constant n, the loop unrolls into the plain chain of multiply-adds. */
static inline double gmm_horner(const double *c, int n, double x) {
    double p = c[0];
    for (int j = 1; j < n; j++) p = p * x + c[j];
    return p;
}

/* 1/j!, j = 13..0: e^r's Taylor coefficients, highest power first. */
static const double GMM_EXP_SERIES[14] = {
    1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
    1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0,
    1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0};

/* 2/(2j+1), j = 10..1: the atanh series of log's R, in powers of s^2, highest first. */
static const double GMM_LOG_SERIES[10] = {
    2.0 / 21.0, 2.0 / 19.0, 2.0 / 17.0, 2.0 / 15.0, 2.0 / 13.0, 2.0 / 11.0,
    2.0 / 9.0, 2.0 / 7.0, 2.0 / 5.0, 2.0 / 3.0};

/* exp(t) for t <= 0: e^t = 2^n e^r, n = round(t / ln 2), r = t - n ln 2 in
   [-ln2/2, ln2/2] (ln 2 in two parts so r is exact), e^r by its Taylor polynomial of
   degree 13 (truncation < 1e-17; measured max relative error against exp: 2e-16),
   2^n put in the exponent bits. The 1.5 * 2^52 shifter rounds t / ln 2 and leaves n
   in its low mantissa bits. Below -708 e^t is subnormal (< 1e-307 of the row's
   largest term): 0. single: degree 7, truncation < 5e-9 relative. */
static inline double gmm_exp_nonpositive(double t, int single) {
    const double shifter = 6755399441055744.0;
    const double ln2_hi = 6.93147180369123816490e-01;
    const double ln2_lo = 1.90821492927058770002e-10;
    double u = t > -708.0 ? t : -708.0;
    double shifted = u * 1.4426950408889634 + shifter;
    double n = shifted - shifter;
    double r = (u - n * ln2_hi) - n * ln2_lo;
    double p = single ? gmm_horner(GMM_EXP_SERIES + 6, 8, r)
                      : gmm_horner(GMM_EXP_SERIES, 14, r);
    int64_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits = (bits - 0x4338000000000000LL + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    double e = p * scale;
    return t > -708.0 ? e : 0.0;
}

/* exp(t) for float t <= 0 in float lanes (twice as many per vector as double's), as
   gmm_exp_nonpositive: n = round(t / ln 2) by the 1.5 * 2^23 shifter, r = t - n ln 2
   (ln 2 in two parts: n ln2_hi is exact for |n| < 2^9), e^r by its Taylor polynomial of
   degree 7 (truncation < 6e-9 relative, a twentieth of a float ulp). From -87 on
   down e^t is near float's smallest normal (1.2e-38): 0 (why that is harmless for
   the responsibilities: gmm_normalize_columns_f32). */
static inline float gmm_expf_nonpositive(float t) {
    const float shifter = 12582912.0f;
    const float ln2_hi = 0.693359375f;
    const float ln2_lo = -2.12194440e-4f;
    static const float series[8] = {1.0f / 5040.0f, 1.0f / 720.0f, 1.0f / 120.0f,
                                    1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f};
    float u = t > -87.0f ? t : -87.0f;
    float shifted = u * 1.44269504f + shifter;
    float n = shifted - shifter;
    float r = (u - n * ln2_hi) - n * ln2_lo;
    float p = series[0];
    for (int j = 1; j < 8; j++) p = p * r + series[j];
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits = (bits - 0x4B400000 + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float e = p * scale;
    return t > -87.0f ? e : 0.0f;
}

/* log(x) for normal positive finite x (the caller redoes the others with log()):
   x = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s = (m - 1) / (m + 1),
   |s| <= 0.172: with f = m - 1 (exact) and R = 2s^2/3 + 2s^4/5 + ... + 2s^20/21
   (truncation < 3e-17 relative), log m = 2s + sR = f - s (f - R) (fdlibm's
   arrangement: the rounding of s is damped by |s| < 0.18). Measured max error
   against glibc's log over [1, 64]: ~1 ulp. single: R to s^10 (absolute error
   < 2e-11). */
static inline double gmm_log_normal(double x, int single) {
    const double ln2_hi = 6.93147180369123816490e-01;
    const double ln2_lo = 1.90821492927058770002e-10;
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    /* Positive doubles order as their bits: e counts the binades above sqrt(1/2)
       (biased by 1023 to stay unsigned; logical shifts and this int -> double
       through the 2^52 shifter vectorise without AVX-512). */
    uint64_t biased = (bits - 0x3fe6a09e667f3bcdULL + (1023ULL << 52)) >> 52;
    uint64_t mbits = bits - ((biased - 1023ULL) << 52);
    uint64_t ebits = 0x4330000000000000ULL | biased;
    double m, eb;
    memcpy(&m, &mbits, sizeof m);
    memcpy(&eb, &ebits, sizeof eb);
    double f = m - 1.0, s = f / (m + 1.0), s2 = s * s;
    double p = single ? gmm_horner(GMM_LOG_SERIES + 5, 5, s2)
                      : gmm_horner(GMM_LOG_SERIES, 10, s2);
    double de = (eb - 4503599627370496.0) - 1023.0;
    return de * ln2_hi + ((f - s * (f - s2 * p)) + de * ln2_lo);
}

/* log(x) for normal positive finite float x in float lanes, as gmm_log_normal with
   R to s^8 (truncation < 3e-9 relative to log m's 2s; measured max error against
   logf over [1, 64]: ~1 ulp). For the log-sum-exp of float32 scores, whose sums lie
   in [1, k]. */
static inline float gmm_logf_normal(float x) {
    const float ln2_hi = 0.693359375f;
    const float ln2_lo = -2.12194440e-4f;
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint32_t biased = (bits - 0x3f3504f3u + (127u << 23)) >> 23;
    uint32_t mbits = bits - ((biased - 127u) << 23);
    float m;
    memcpy(&m, &mbits, sizeof m);
    float f = m - 1.0f, s = f / (m + 1.0f), s2 = s * s;
    float p = ((2.0f / 9.0f * s2 + 2.0f / 7.0f) * s2 + 2.0f / 5.0f) * s2 + 2.0f / 3.0f;
    float e = (float)((int32_t)biased - 127);
    return e * ln2_hi + ((f - s * (f - s2 * p)) + e * ln2_lo);
}

#endif
