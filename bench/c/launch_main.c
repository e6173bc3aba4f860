/* launch_main: time from fork to the first breakpoint at main (fork + TRACEME + execv, int3 at main).
 * Prints one JSON line on stdout. */
#define _GNU_SOURCE
#include "common.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

static const char usage[] = "launch_main [--pin] [--runs R] [--iterations I] [-v] <binary> <main-offset-hex>";

/* One launch: returns milliseconds from before fork to the SIGTRAP at main; the tracee is killed. */
static double launch_once(char *binary, uint64_t offset)
{
	char *argv[] = { binary, NULL };
	struct user_regs_struct regs;
	double t0, t1;
	uint64_t addr;
	int status;
	pid_t pid;

	t0 = now_seconds();
	pid = launch_traced(argv);
	addr = load_bias(pid) + offset;
	insert_int3(pid, addr);
	if (ptrace(PTRACE_CONT, pid, NULL, NULL) != 0)
		die(1, "PTRACE_CONT");
	status = wait_tracee(pid, 0);
	t1 = now_seconds();
	if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP)
		die(0, "expected SIGTRAP at main, got status 0x%x", status);
	if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) != 0)
		die(1, "PTRACE_GETREGS");
	if (regs.rip - 1 != addr)
		die(0, "SIGTRAP at rip 0x%llx, expected 0x%llx", (unsigned long long)regs.rip,
		    (unsigned long long)addr + 1);
	kill_tracee();
	return (t1 - t0) * 1e3;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	double *per_run, *samples, overall;
	uint64_t offset;

	parse_opts(argc, argv, &o, usage);
	if (o.nargs != 2) {
		fprintf(stderr, "usage: %s\n", usage);
		return 2;
	}
	offset = parse_hex(o.args[1]);
	per_run = calloc((size_t)o.runs, sizeof *per_run);
	samples = calloc((size_t)o.iterations, sizeof *samples);
	if (!per_run || !samples)
		die(1, "calloc");
	for (int r = 0; r < o.runs; r++) {
		for (int i = 0; i < o.iterations; i++)
			samples[i] = launch_once(o.args[0], offset);
		per_run[r] = median(samples, o.iterations);
		if (o.verbose)
			fprintf(stderr, "run %d: median %.3f ms over %d launches (min %.3f, max %.3f)%s\n", r + 1,
				per_run[r], o.iterations, samples[0], samples[o.iterations - 1],
				o.pin ? " (pinned)" : "");
	}
	{
		double *tmp = calloc((size_t)o.runs, sizeof *tmp);

		if (!tmp)
			die(1, "calloc");
		for (int r = 0; r < o.runs; r++)
			tmp[r] = per_run[r];
		overall = median(tmp, o.runs);
		free(tmp);
	}
	printf("{\"iterations\":%d,\"median_ms\":%.4f,\"runs\":", o.iterations, overall);
	print_array(per_run, o.runs, 4);
	printf(",\"pinned\":%s,\"cpu\":%d}\n", o.pin ? "true" : "false", o.cpu);
	free(per_run);
	free(samples);
	return 0;
}
