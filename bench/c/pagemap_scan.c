/* pagemap_scan: the kernel's cost of one write-tracking scan in C, on this process's own memory:
 * maps <mib> MiB, writes its first half, registers it with userfaultfd (async write-protect), protects
 * it with a first PAGEMAP_SCAN, then R times: write one page, time PAGEMAP_SCAN(PAGE_IS_WRITTEN,
 * WP_MATCHING). Prints one JSON line: the median scan time in ms and the pages the last scan found. */
#define _GNU_SOURCE
#include "common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

static const char usage[] = "pagemap_scan [--runs R] <mib>";

/* From include/uapi/linux/fs.h (Linux 6.7), absent from older headers. */
struct scan_arg { uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, inverted, mask, anyof, ret; };
struct region { uint64_t start, end, categories; };
#define SCAN_IOCTL _IOWR('f', 16, struct scan_arg)
#define IS_WRITTEN 2ULL
#define WP_MATCHING 1ULL
#define CHECK_WPASYNC 2ULL
#define FEATURE_WP_UNPOPULATED (1ULL << 13)
#define FEATURE_WP_ASYNC (1ULL << 15)

static long scan(int pm, char *buf, size_t size, struct region *vec, int n, uint64_t *pages)
{
	struct scan_arg a = { .size = sizeof a, .flags = WP_MATCHING | CHECK_WPASYNC, .start = (uintptr_t)buf,
			      .end = (uintptr_t)buf + size, .vec = (uintptr_t)vec, .vec_len = (uint64_t)n,
			      .mask = IS_WRITTEN, .ret = IS_WRITTEN };
	long r = ioctl(pm, SCAN_IOCTL, &a);

	*pages = 0;
	for (long i = 0; i < r; i++)
		*pages += (vec[i].end - vec[i].start) / 4096;
	return r;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct region vec[1024];
	uint64_t pages = 0;
	double times[1000];

	parse_opts(argc, argv, &o, usage);
	if (o.nargs < 1)
		die(0, "%s", usage);
	size_t size = strtoull(o.args[0], NULL, 10) << 20;
	int runs = o.runs > 0 && o.runs <= 1000 ? o.runs : 20;
	char *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die(1, "mmap");
	for (size_t i = 0; i < size / 2; i += 4096) /* the first half, as fixtures/c/dirty.c does */
		buf[i] = 1;
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */);
	struct uffdio_api api = { .api = UFFD_API, .features = FEATURE_WP_ASYNC | FEATURE_WP_UNPOPULATED };
	struct uffdio_register reg = { .range = { (uintptr_t)buf, size }, .mode = UFFDIO_REGISTER_MODE_WP };
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg))
		die(1, "userfaultfd");
	int pm = open("/proc/self/pagemap", O_RDONLY);
	if (scan(pm, buf, size, vec, 1024, &pages) < 0)
		die(1, "PAGEMAP_SCAN");
	for (int r = 0; r < runs; r++) {
		buf[(size_t)(r * 97 % (int)(size / 4096)) * 4096] += 1;
		double t0 = now_seconds();
		if (scan(pm, buf, size, vec, 1024, &pages) < 0)
			die(1, "PAGEMAP_SCAN");
		times[r] = (now_seconds() - t0) * 1000;
	}
	printf("{\"median_ms\": %.4f, \"pages\": %llu}\n", median(times, runs), (unsigned long long)pages);
	return 0;
}
