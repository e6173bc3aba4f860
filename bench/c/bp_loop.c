/* bp_loop: raw C breakpoint round trips per second, the baseline for procsnap's breakpoint loop.
 * Per hit: wait SIGTRAP, GETREGS, restore the original word, SETREGS rip-1, SINGLESTEP, wait,
 * re-insert int3, CONT. Prints one JSON line on stdout. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

static const char usage[] = "bp_loop [--pin] [--runs R] [-v] <binary> <symbol-offset-hex> <count>";

/* One run: launch `binary count`, break at bias+offset until exit; returns seconds from first hit to exit. */
static double run_once(char *binary, uint64_t offset, char *count_arg, long count, long *hits_out)
{
	char *argv[] = { binary, count_arg, NULL };
	struct user_regs_struct regs;
	double t0 = 0, t1;
	long hits = 0, orig, trap;
	uint64_t addr;
	int status, sig = 0;
	pid_t pid;

	pid = launch_traced(argv);
	addr = load_bias(pid) + offset;
	orig = insert_int3(pid, addr);
	trap = (orig & ~0xffL) | 0xcc;
	if (ptrace(PTRACE_CONT, pid, NULL, NULL) != 0)
		die(1, "PTRACE_CONT");
	for (;;) {
		status = wait_tracee(pid, 1);
		if (WIFEXITED(status) || WIFSIGNALED(status))
			break;
		if (!WIFSTOPPED(status))
			die(0, "unexpected wait status 0x%x", status);
		if (WSTOPSIG(status) != SIGTRAP) {
			/* Not ours: deliver it. */
			sig = WSTOPSIG(status);
			if (ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig) != 0)
				die(1, "PTRACE_CONT");
			continue;
		}
		if (hits == 0)
			t0 = now_seconds();
		if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) != 0)
			die(1, "PTRACE_GETREGS");
		if (regs.rip - 1 != addr)
			die(0, "SIGTRAP at rip 0x%llx, expected the breakpoint at 0x%llx",
			    (unsigned long long)regs.rip, (unsigned long long)addr + 1);
		hits++;
		if (ptrace(PTRACE_POKETEXT, pid, (void *)addr, (void *)orig) != 0)
			die(1, "PTRACE_POKETEXT (restore)");
		regs.rip -= 1;
		if (ptrace(PTRACE_SETREGS, pid, NULL, &regs) != 0)
			die(1, "PTRACE_SETREGS");
		if (ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) != 0)
			die(1, "PTRACE_SINGLESTEP");
		status = wait_tracee(pid, 0);
		if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP)
			die(0, "single-step: expected SIGTRAP, got status 0x%x", status);
		if (ptrace(PTRACE_POKETEXT, pid, (void *)addr, (void *)trap) != 0)
			die(1, "PTRACE_POKETEXT (re-insert)");
		if (ptrace(PTRACE_CONT, pid, NULL, NULL) != 0)
			die(1, "PTRACE_CONT");
	}
	t1 = now_seconds();
	if (WIFSIGNALED(status))
		die(0, "%s killed by signal %d after %ld hits", binary, WTERMSIG(status), hits);
	if (WEXITSTATUS(status) != 0)
		die(0, "%s exited with %d after %ld hits", binary, WEXITSTATUS(status), hits);
	if (hits != count)
		die(0, "%ld hits, expected %ld", hits, count);
	*hits_out = hits;
	return hits ? t1 - t0 : 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	double *rates, *secs, rate_median, sec_median;
	uint64_t offset;
	long count, hits = 0;
	char *end;

	parse_opts(argc, argv, &o, usage);
	if (o.nargs != 3) {
		fprintf(stderr, "usage: %s\n", usage);
		return 2;
	}
	offset = parse_hex(o.args[1]);
	errno = 0;
	count = strtol(o.args[2], &end, 10);
	if (errno || *end || end == o.args[2] || count < 1)
		die(0, "count must be a positive integer: %s", o.args[2]);
	rates = calloc((size_t)o.runs, sizeof *rates);
	secs = calloc((size_t)o.runs, sizeof *secs);
	if (!rates || !secs)
		die(1, "calloc");
	for (int r = 0; r < o.runs; r++) {
		secs[r] = run_once(o.args[0], offset, o.args[2], count, &hits);
		rates[r] = secs[r] > 0 ? (double)hits / secs[r] : 0;
		if (o.verbose)
			fprintf(stderr, "run %d: %ld hits in %.4f s = %.0f/s%s\n", r + 1, hits, secs[r],
				rates[r], o.pin ? " (pinned)" : "");
	}
	printf("{\"hits\":%ld,", hits);
	{
		double *tmp = calloc((size_t)o.runs, sizeof *tmp);

		if (!tmp)
			die(1, "calloc");
		for (int r = 0; r < o.runs; r++)
			tmp[r] = secs[r];
		sec_median = median(tmp, o.runs);
		for (int r = 0; r < o.runs; r++)
			tmp[r] = rates[r];
		rate_median = median(tmp, o.runs);
		free(tmp);
	}
	printf("\"seconds\":%.6f,\"rate\":%.1f,\"runs\":", sec_median,
	       sec_median > 0 ? (double)hits / sec_median : 0);
	print_array(rates, o.runs, 1);
	printf(",\"median\":%.1f,\"pinned\":%s,\"cpu\":%d}\n", rate_median, o.pin ? "true" : "false", o.cpu);
	free(rates);
	free(secs);
	return 0;
}
