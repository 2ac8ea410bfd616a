/* Which kernels.c table runs: the best level the CPU supports among those built,
   or a lower one the caller asks for. meson.build defines GMM_HAVE_AVX2 and
   GMM_HAVE_AVX512 when it built those levels (x86-64 with GCC or Clang). */
#include "kernels.h"

extern const struct gmm_kernel_table gmm_kernels_baseline;
#if GMM_HAVE_AVX2
extern const struct gmm_kernel_table gmm_kernels_avx2;
#endif
#if GMM_HAVE_AVX512
extern const struct gmm_kernel_table gmm_kernels_avx512;
#endif

const struct gmm_kernel_table *gmm_active_kernels = &gmm_kernels_baseline;
static int active_level = GMM_LEVEL_BASELINE;

int gmm_supported_level(void) {
    int level = GMM_LEVEL_BASELINE;
#if GMM_HAVE_AVX2
    /* x86-64-v3's features that GCC and Clang both name (F16C, LZCNT and MOVBE come
       with them on every such CPU). */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
            && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2"))
        level = GMM_LEVEL_AVX2;
#endif
#if GMM_HAVE_AVX512
    /* x86-64-v4: AVX-512 F, VL, BW, DQ and CD. */
    if (level == GMM_LEVEL_AVX2 && __builtin_cpu_supports("avx512f")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd"))
        level = GMM_LEVEL_AVX512;
#endif
    return level;
}

int gmm_kernel_level(void) { return active_level; }

int gmm_set_kernel_level(int level) {
    int supported = gmm_supported_level();
    active_level = level < supported ? (level < 0 ? 0 : level) : supported;
    gmm_active_kernels = &gmm_kernels_baseline;
#if GMM_HAVE_AVX2
    if (active_level == GMM_LEVEL_AVX2) gmm_active_kernels = &gmm_kernels_avx2;
#endif
#if GMM_HAVE_AVX512
    if (active_level == GMM_LEVEL_AVX512) gmm_active_kernels = &gmm_kernels_avx512;
#endif
    return active_level;
}
