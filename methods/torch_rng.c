// torch_rng.c: torch's CPU random generator as far as the PEFT formats need it
// (methods_internal.h): mt19937 seeded as torch.Generator().manual_seed(seed) (FourierFT's
// randperm entries, fourierft.c) and tensor.uniform_(from, to, generator) on float32 (VeRA's
// projections regenerated from projection_prng_key, vera.c). Written from the algorithm's
// definition (Matsumoto & Nishimura 1998) and torch's documented CPU sampling; checked bit for
// bit against torch in tests/ref/ref_methods.py (entries) and tests/ref/ref_peft_export.py
// (projections).
#include <math.h>
#include "methods_internal.h"

void pb_mt_seed(pb_mt19937 *m, uint32_t seed) {
    m->s[0] = seed;
    for (int i = 1; i < 624; i++) m->s[i] = 1812433253u * (m->s[i - 1] ^ (m->s[i - 1] >> 30)) + (uint32_t)i;
    m->i = 624;
}

uint32_t pb_mt_next(pb_mt19937 *m) {
    if (m->i >= 624) {
        for (int k = 0; k < 624; k++) {
            uint32_t y = (m->s[k] & 0x80000000u) | (m->s[(k + 1) % 624] & 0x7fffffffu);
            m->s[k] = m->s[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        m->i = 0;
    }
    uint32_t y = m->s[m->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

// torch's uniform_real_distribution<float>: 24 random bits scaled to [0, 1), then x (to - from)
// + from, which torch's CPU kernel computes as one fused multiply-add (fmaf: exact, one rounding).
void pb_torch_uniform(pb_mt19937 *m, float *out, size_t n, double from, double to) {
    float f = (float)from, t = (float)to, d = t - f;
    for (size_t i = 0; i < n; i++) {
        float x = (float)(pb_mt_next(m) & 0xffffffu) * (1.0f / 16777216.0f);
        out[i] = fmaf(x, d, f);
    }
}
