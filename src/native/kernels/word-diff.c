/*
 * diff_words: the indices of the 8-byte words of [a, a + 8n) that differ from b's, at most cap of
 * them, in out; returns how many. When it returns cap, the caller resumes after out[cap - 1].
 * Freestanding and position-independent (no libc, no constants in memory): run from an executable
 * page of procsnap's (src/native/word-diff.ts). Baseline x86_64 (SSE2): unaligned 16-byte loads,
 * 64 bytes a round, one branch for all of them; the rare round that differs is looked at word by word.
 */
#include <emmintrin.h>
#include <stdint.h>

typedef uint64_t __attribute__((aligned(1), may_alias)) word;

static inline __m128i load(const unsigned char *p)
{
	return _mm_loadu_si128((const __m128i *)p);
}

uint32_t diff_words(const unsigned char *a, const unsigned char *b, uint32_t n, uint32_t *out, uint32_t cap)
{
	uint32_t count = 0;
	uint32_t i = 0;
	if (cap == 0)
		return 0;
	for (; n - i >= 8; i += 8) {
		const unsigned char *x = a + 8 * (uint64_t)i;
		const unsigned char *y = b + 8 * (uint64_t)i;
		__m128i e0 = _mm_cmpeq_epi8(load(x), load(y));
		__m128i e1 = _mm_cmpeq_epi8(load(x + 16), load(y + 16));
		__m128i e2 = _mm_cmpeq_epi8(load(x + 32), load(y + 32));
		__m128i e3 = _mm_cmpeq_epi8(load(x + 48), load(y + 48));
		__m128i all = _mm_and_si128(_mm_and_si128(e0, e1), _mm_and_si128(e2, e3));
		if (__builtin_expect(_mm_movemask_epi8(all) == 0xffff, 1))
			continue;
		for (uint32_t k = 0; k < 8; k++) {
			if (((const word *)x)[k] != ((const word *)y)[k]) {
				out[count++] = i + k;
				if (count == cap)
					return count;
			}
		}
	}
	for (; i < n; i++) {
		if (((const word *)a)[i] != ((const word *)b)[i]) {
			out[count++] = i;
			if (count == cap)
				return count;
		}
	}
	return count;
}
