/* regs_write: what writing every register of a stopped thread costs at the kernel's price. Launches
 * the vecregs fixture, stops at checkpoint(), then per write: PTRACE_GETREGS, rax changed,
 * PTRACE_SETREGS, PTRACE_GETREGSET(NT_X86_XSTATE), a byte of xmm0 changed, PTRACE_SETREGSET.
 * Prints one JSON line on stdout: the median over runs of the time per write, in µs. */
#define _GNU_SOURCE
#include "common.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

static const char usage[] = "regs_write [--runs R] [--iterations N] <vecregs-binary> <checkpoint-offset-hex>";

#define XSTATE_MAX 16384
/* xmm0 in the FXSAVE region of the xsave area. */
#define XMM0 160

int main(int argc, char **argv)
{
	struct bench_opts opts;
	static unsigned char xstate[XSTATE_MAX];
	double per_write[1024];

	parse_opts(argc, argv, &opts, usage);
	if (opts.nargs != 2 || opts.runs > 1024)
		die(0, "usage: %s", usage);
	char *child[] = { opts.args[0], NULL };
	pid_t pid = launch_traced(child);
	uint64_t addr = load_bias(pid) + parse_hex(opts.args[1]);
	insert_int3(pid, addr);
	if (ptrace(PTRACE_CONT, pid, NULL, NULL) != 0)
		die(1, "PTRACE_CONT");
	int status = wait_tracee(pid, 0);
	struct user_regs_struct regs;
	if (!WIFSTOPPED(status) || ptrace(PTRACE_GETREGS, pid, NULL, &regs) != 0 || regs.rip - 1 != addr)
		die(0, "did not stop at checkpoint (status 0x%x)", status);
	for (int r = 0; r < opts.runs; r++) {
		double t0 = now_seconds();
		for (int i = 0; i < opts.iterations; i++) {
			struct iovec area = { xstate, XSTATE_MAX };

			if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) != 0)
				die(1, "PTRACE_GETREGS");
			regs.rax ^= 1;
			if (ptrace(PTRACE_SETREGS, pid, NULL, &regs) != 0)
				die(1, "PTRACE_SETREGS");
			if (ptrace(PTRACE_GETREGSET, pid, (void *)(long)NT_X86_XSTATE, &area) != 0)
				die(1, "PTRACE_GETREGSET");
			xstate[XMM0] ^= 1;
			if (ptrace(PTRACE_SETREGSET, pid, (void *)(long)NT_X86_XSTATE, &area) != 0)
				die(1, "PTRACE_SETREGSET");
		}
		per_write[r] = (now_seconds() - t0) / opts.iterations * 1e6;
	}
	kill_tracee();
	printf("{\"median_us\": %.3f, \"runs\": ", median(per_write, opts.runs));
	print_array(per_write, opts.runs, 3);
	printf("}\n");
	return 0;
}
