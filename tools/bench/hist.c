/* tools/bench/hist.c: the latency histogram (layout in bench.h).
 * Exact below 2*HIST_SUB ns, then HIST_SUB steps per power of two, so a
 * reported percentile is within 1/(2*HIST_SUB) (0.4 %) of the true sample. */
#include "bench.h"

static size_t hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (size_t)v;
    int k = 63 - __builtin_clzll(v); /* k > HIST_SUB_BITS */
    int shift = k - HIST_SUB_BITS;
    size_t sub = (size_t)(v >> shift) - HIST_SUB;
    return 2 * HIST_SUB + (size_t)(k - HIST_SUB_BITS - 1) * HIST_SUB + sub;
}

static void hist_bounds(size_t i, uint64_t *lo, uint64_t *hi)
{
    if (i < 2 * HIST_SUB) {
        *lo = *hi = i;
        return;
    }
    size_t j = i - 2 * HIST_SUB;
    int shift = (int)(j / HIST_SUB) + 1;
    *lo = (uint64_t)(HIST_SUB + j % HIST_SUB) << shift;
    *hi = *lo + ((uint64_t)1 << shift) - 1;
}

void hist_add(hist *h, uint64_t v)
{
    h->b[hist_index(v)]++;
    if (!h->n || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->n++;
    h->sum += v;
}

uint64_t hist_pct(const hist *h, double p)
{
    if (!h->n)
        return 0;
    double r = p / 100.0 * (double)h->n;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank >= h->n)
        return h->max;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t lo, hi;
            hist_bounds(i, &lo, &hi);
            uint64_t mid = lo + (hi - lo) / 2;
            return mid < h->min ? h->min : mid > h->max ? h->max : mid;
        }
    }
    return h->max;
}
