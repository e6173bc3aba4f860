/* touched_read: what a capture of only the touched pages costs in C, CRIU's way: for every private
 * anonymous rw map of a (stopped) process, or only [start, end), read /proc/PID/pagemap (8 bytes a
 * page) and process_vm_readv the present or swapped runs into a fresh buffer. Prints one JSON line:
 * median milliseconds over --runs and the bytes read. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static const char usage[] = "touched_read [--runs R] <pid> [<start-hex> <end-hex>]";

#define PAGE 4096UL
#define BATCH 32768

struct range { uint64_t start, end; };

static size_t anon_maps(pid_t pid, struct range *out, size_t max)
{
	char path[64], line[512];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/maps", pid);
	f = fopen(path, "r");
	if (!f)
		die(1, "open %s", path);
	while (n < max && fgets(line, sizeof line, f)) {
		unsigned long long s, e, off, ino;
		char perms[8], dev[16], name[256] = "";

		if (sscanf(line, "%llx-%llx %7s %llx %15s %llu %255s", &s, &e, perms, &off, dev, &ino, name) < 6)
			continue;
		if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p' || ino != 0 || name[0] == '/')
			continue;
		out[n++] = (struct range){ s, e };
	}
	fclose(f);
	return n;
}

/* Reads the touched pages of [start, end) into a fresh buffer (freed after); returns bytes read. */
static size_t read_touched(pid_t pid, int pagemap, uint64_t start, uint64_t end)
{
	static uint64_t entries[BATCH];
	size_t pages = (end - start) / PAGE, total = 0;
	unsigned char *buf = malloc(end - start);

	if (!buf)
		die(1, "malloc");
	for (size_t i = 0; i < pages; i += BATCH) {
		size_t n = pages - i < BATCH ? pages - i : BATCH;
		ssize_t got = pread(pagemap, entries, n * 8, (off_t)((start / PAGE + i) * 8));

		if (got != (ssize_t)(n * 8))
			die(1, "pagemap");
		for (size_t j = 0; j < n;) {
			size_t k = j;

			if (!(entries[j] >> 62)) {
				j++;
				continue;
			}
			while (k < n && (entries[k] >> 62))
				k++;
			struct iovec local = { buf + (i + j) * PAGE, (k - j) * PAGE };
			struct iovec remote = { (void *)(uintptr_t)(start + (i + j) * PAGE), (k - j) * PAGE };
			ssize_t r = process_vm_readv(pid, &local, 1, &remote, 1, 0);

			if (r < 0)
				die(1, "process_vm_readv");
			total += (size_t)r;
			j = k;
		}
	}
	__asm__ volatile("" : : "r"(buf) : "memory");
	free(buf);
	return total;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	static struct range maps[4096];
	char path[64];
	size_t n, bytes = 0;
	double *ms;
	pid_t pid;
	int fd;

	parse_opts(argc, argv, &o, usage);
	if (o.nargs != 1 && o.nargs != 3)
		die(0, "%s", usage);
	pid = (pid_t)atoi(o.args[0]);
	if (o.nargs == 3) {
		maps[0] = (struct range){ parse_hex(o.args[1]), parse_hex(o.args[2]) };
		n = 1;
	} else {
		n = anon_maps(pid, maps, 4096);
	}
	snprintf(path, sizeof path, "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die(1, "open %s", path);
	ms = calloc((size_t)o.runs, sizeof *ms);
	for (int r = 0; r < o.runs; r++) {
		double t0 = now_seconds();

		bytes = 0;
		for (size_t i = 0; i < n; i++)
			bytes += read_touched(pid, fd, maps[i].start, maps[i].end);
		ms[r] = (now_seconds() - t0) * 1000;
	}
	printf("{\"median_ms\": %.3f, \"bytes\": %zu}\n", median(ms, o.runs), bytes);
	return 0;
}
