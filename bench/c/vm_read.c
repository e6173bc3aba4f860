/* vm_read: process_vm_readv throughput from a tracee stopped at bigheap's ready(buf, size),
 * into one reused, pre-faulted buffer. Prints one JSON line on stdout. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

static const char usage[] = "vm_read [--pin] [--runs R] [-v] <bigheap-binary> <ready-offset-hex> <mib>";

#define CHUNK_MAX ((size_t)1 << 30)

/* Read size bytes at remote address src into dst, in chunks of at most 1 GiB, resuming partial reads. */
static void read_all(pid_t pid, unsigned char *dst, uint64_t src, size_t size)
{
	size_t done = 0;

	while (done < size) {
		size_t want = size - done < CHUNK_MAX ? size - done : CHUNK_MAX;
		struct iovec local = { dst + done, want };
		struct iovec remote = { (void *)(uintptr_t)(src + done), want };
		ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die(1, "process_vm_readv at 0x%llx (%zu of %zu bytes read)",
			    (unsigned long long)(src + done), done, size);
		}
		if (n == 0)
			die(0, "process_vm_readv returned 0 at 0x%llx", (unsigned long long)(src + done));
		done += (size_t)n;
	}
}

static void verify(const unsigned char *buf, size_t size)
{
	for (size_t i = 0; i < size; i++) {
		unsigned char want = (unsigned char)((i * 131 + 7) & 0xff);

		if (buf[i] != want)
			die(0, "pattern mismatch at byte %zu: 0x%02x, expected 0x%02x", i, buf[i], want);
	}
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct user_regs_struct regs;
	double *gbps, *tmp, med;
	unsigned char *local;
	uint64_t offset, addr, remote;
	size_t size, want;
	unsigned long mib;
	char *end;
	int status;
	pid_t pid;

	parse_opts(argc, argv, &o, usage);
	if (o.nargs != 3) {
		fprintf(stderr, "usage: %s\n", usage);
		return 2;
	}
	offset = parse_hex(o.args[1]);
	errno = 0;
	mib = strtoul(o.args[2], &end, 10);
	if (errno || *end || end == o.args[2] || mib < 1)
		die(0, "mib must be a positive integer: %s", o.args[2]);
	want = (size_t)mib << 20;

	{
		char *child_argv[] = { o.args[0], o.args[2], NULL };

		pid = launch_traced(child_argv);
	}
	addr = load_bias(pid) + offset;
	insert_int3(pid, addr);
	if (ptrace(PTRACE_CONT, pid, NULL, NULL) != 0)
		die(1, "PTRACE_CONT");
	for (;;) {
		status = wait_tracee(pid, 0);
		if (WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP)
			break;
		if (!WIFSTOPPED(status))
			die(0, "unexpected wait status 0x%x", status);
		if (ptrace(PTRACE_CONT, pid, NULL, (void *)(long)WSTOPSIG(status)) != 0)
			die(1, "PTRACE_CONT");
	}
	if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) != 0)
		die(1, "PTRACE_GETREGS");
	if (regs.rip - 1 != addr)
		die(0, "SIGTRAP at rip 0x%llx, expected the breakpoint at ready (0x%llx)",
		    (unsigned long long)regs.rip, (unsigned long long)addr + 1);
	remote = regs.rdi;
	size = (size_t)regs.rsi;
	if (size != want)
		die(0, "ready() got size %zu, expected %zu (%lu MiB)", size, want, mib);

	local = malloc(size);
	gbps = calloc((size_t)o.runs, sizeof *gbps);
	tmp = calloc((size_t)o.runs, sizeof *tmp);
	if (!local || !gbps || !tmp)
		die(1, "cannot allocate %zu bytes", size);
	/* Fault the pages in (non-zero: gcc turns malloc + memset 0 into calloc, which skips it). */
	memset(local, 0xa5, size);

	for (int r = 0; r < o.runs; r++) {
		double t0 = now_seconds(), secs;

		read_all(pid, local, remote, size);
		secs = now_seconds() - t0;
		if (r == 0)
			verify(local, size);
		gbps[r] = (double)size / secs / 1e9;
		if (o.verbose)
			fprintf(stderr, "run %d: %zu bytes in %.4f s = %.2f GB/s\n", r + 1, size, secs, gbps[r]);
	}
	kill_tracee();
	for (int r = 0; r < o.runs; r++)
		tmp[r] = gbps[r];
	med = median(tmp, o.runs);
	printf("{\"bytes\":%zu,\"runs\":", size);
	print_array(gbps, o.runs, 3);
	printf(",\"median_gbps\":%.3f,\"pinned\":%s,\"cpu\":%d}\n", med, o.pin ? "true" : "false", o.cpu);
	free(local);
	free(gbps);
	free(tmp);
	return 0;
}
