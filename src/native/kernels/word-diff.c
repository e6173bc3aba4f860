/*
 * procsnap_kernel (diff_words): the indices of the 8-byte words of [a, a + 8n) that differ from
 * b's, at most cap of them, in out; returns how many. When it returns cap, the caller resumes after out[cap - 1].
 * Freestanding and position-independent (no libc, no constants in memory): run from an executable
 * page of procsnap's (src/native/word-diff.ts). Baseline x86_64 (SSE2): 128 bytes a round in unaligned
 * 16-byte loads, one branch for all; the rare round that differs is looked at word by word. Software
 * prefetch 512 bytes ahead: as fast as without where buffers are far apart, faster where they alias.
 */
#include <emmintrin.h>
#include <stdint.h>
#include <xmmintrin.h>

typedef uint64_t __attribute__((aligned(1), may_alias)) word;

#define ROUND 128
#define AHEAD 512

static inline __m128i same(const unsigned char *x, const unsigned char *y, int at)
{
	return _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(x + at)), _mm_loadu_si128((const __m128i *)(y + at)));
}

__attribute__((section(".text.entry"))) uint32_t procsnap_kernel(const unsigned char *a, const unsigned char *b, uint32_t n,
								  uint32_t *out, uint32_t cap)
{
	const unsigned char *x = a;
	const unsigned char *y = b;
	const unsigned char *rounds = a + (uint64_t)(n / 16) * ROUND;
	uint32_t count = 0;
	if (cap == 0)
		return 0;
	for (; x < rounds; x += ROUND, y += ROUND) {
		/* A prefetch never faults: past the end of the buffers it is only wasted. */
		_mm_prefetch((const char *)x + AHEAD, _MM_HINT_T0);
		_mm_prefetch((const char *)x + AHEAD + 64, _MM_HINT_T0);
		_mm_prefetch((const char *)y + AHEAD, _MM_HINT_T0);
		_mm_prefetch((const char *)y + AHEAD + 64, _MM_HINT_T0);
		__m128i lo = _mm_and_si128(_mm_and_si128(same(x, y, 0), same(x, y, 16)),
					   _mm_and_si128(same(x, y, 32), same(x, y, 48)));
		__m128i hi = _mm_and_si128(_mm_and_si128(same(x, y, 64), same(x, y, 80)),
					   _mm_and_si128(same(x, y, 96), same(x, y, 112)));
		if (__builtin_expect(_mm_movemask_epi8(_mm_and_si128(lo, hi)) == 0xffff, 1))
			continue;
		uint32_t first = (uint32_t)((uint64_t)(x - a) / 8);
		for (uint32_t k = 0; k < ROUND / 8; k++) {
			if (((const word *)x)[k] != ((const word *)y)[k]) {
				out[count++] = first + k;
				if (count == cap)
					return count;
			}
		}
	}
	for (uint32_t i = (n / 16) * 16; i < n; i++) {
		if (((const word *)a)[i] != ((const word *)b)[i]) {
			out[count++] = i;
			if (count == cap)
				return count;
		}
	}
	return count;
}
