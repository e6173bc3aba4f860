/* threads_capture: what capturing the registers and a stack block of every thread costs at the
 * kernel's price. Launches crowd with N workers, stops at all_started() with every thread stopped,
 * then per pass and per thread: PTRACE_GETREGS, PTRACE_GETREGSET(NT_X86_XSTATE) and one
 * process_vm_readv of the 4 KiB stack page holding sp. Prints one JSON line on stdout. */
#define _GNU_SOURCE
#include "common.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static const char usage[] = "threads_capture [--runs R] [-v] <crowd-binary> <all_started-offset-hex> <workers>";

#define MAX_THREADS 4096
#define XSTATE_MAX 16384

static pid_t tids[MAX_THREADS];
static int ntids;

/* Run until the main thread traps at the breakpoint at addr, letting new threads (PTRACE_O_TRACECLONE) run. */
static void run_to_breakpoint(pid_t pid, uint64_t addr)
{
	if (ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE)) != 0)
		die(1, "PTRACE_SETOPTIONS");
	if (ptrace(PTRACE_CONT, pid, NULL, NULL) != 0)
		die(1, "PTRACE_CONT");
	for (;;) {
		int status, sig = 0;
		pid_t t = waitpid(-1, &status, __WALL);

		if (t < 0) {
			if (errno == EINTR)
				continue;
			die(1, "waitpid");
		}
		if (!WIFSTOPPED(status))
			die(0, "thread %d ended before the breakpoint (status 0x%x)", (int)t, status);
		if (t == pid && WSTOPSIG(status) == SIGTRAP && (status >> 16) == 0) {
			struct user_regs_struct regs;

			if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) != 0)
				die(1, "PTRACE_GETREGS");
			if (regs.rip - 1 == addr)
				return;
		} else if (WSTOPSIG(status) != SIGTRAP && WSTOPSIG(status) != SIGSTOP) {
			sig = WSTOPSIG(status);
		}
		if (ptrace(PTRACE_CONT, t, NULL, (void *)(long)sig) != 0)
			die(1, "PTRACE_CONT %d", (int)t);
	}
}

/* Every thread of pid into tids[], the others stopped with SIGSTOP (the main thread is stopped already). */
static void stop_all(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		die(1, "opendir %s", path);
	while ((e = readdir(d)) != NULL && ntids < MAX_THREADS) {
		pid_t t = (pid_t)atoi(e->d_name);

		if (t > 0)
			tids[ntids++] = t;
	}
	closedir(d);
	for (int i = 0; i < ntids; i++) {
		int status;

		if (tids[i] == pid)
			continue;
		if (syscall(SYS_tgkill, pid, tids[i], SIGSTOP) != 0)
			die(1, "tgkill %d", (int)tids[i]);
		while (waitpid(tids[i], &status, __WALL) < 0)
			if (errno != EINTR)
				die(1, "waitpid %d", (int)tids[i]);
		if (!WIFSTOPPED(status))
			die(0, "thread %d did not stop (status 0x%x)", (int)tids[i], status);
	}
}

/* Kill the tracee and reap every thread (common.c's kill_tracee waits for the leader alone, which a
 * multi-threaded tracee's unreaped threads would block forever). */
static void end_tracee(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	while (waitpid(-1, &status, __WALL) > 0 || errno == EINTR)
		;
}

/* One pass over every thread: registers, xsave area, the stack page at sp. */
static void capture_pass(pid_t pid, unsigned char *xstate, unsigned char *stack)
{
	for (int i = 0; i < ntids; i++) {
		struct user_regs_struct regs;
		struct iovec area = { xstate, XSTATE_MAX };
		struct iovec local = { stack, 4096 };
		struct iovec remote;

		if (ptrace(PTRACE_GETREGS, tids[i], NULL, &regs) != 0)
			die(1, "PTRACE_GETREGS %d", (int)tids[i]);
		if (ptrace(PTRACE_GETREGSET, tids[i], (void *)(long)NT_X86_XSTATE, &area) != 0)
			die(1, "PTRACE_GETREGSET %d", (int)tids[i]);
		remote.iov_base = (void *)(uintptr_t)(regs.rsp & ~(uint64_t)4095);
		remote.iov_len = 4096;
		if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != 4096)
			die(1, "process_vm_readv %d", (int)tids[i]);
	}
}

int main(int argc, char **argv)
{
	static unsigned char xstate[XSTATE_MAX], stack[4096];
	struct bench_opts o;
	double *ms, *tmp;
	uint64_t addr;
	pid_t pid;

	parse_opts(argc, argv, &o, usage);
	if (o.nargs != 3) {
		fprintf(stderr, "usage: %s\n", usage);
		return 2;
	}
	{
		char *child_argv[] = { o.args[0], o.args[2], NULL };

		pid = launch_traced(child_argv);
	}
	addr = load_bias(pid) + parse_hex(o.args[1]);
	insert_int3(pid, addr);
	run_to_breakpoint(pid, addr);
	stop_all(pid);
	ms = calloc((size_t)o.runs, sizeof *ms);
	tmp = calloc((size_t)o.runs, sizeof *tmp);
	if (!ms || !tmp)
		die(1, "calloc");
	capture_pass(pid, xstate, stack); /* warm-up, as the Node side takes one snapshot first */
	for (int r = 0; r < o.runs; r++) {
		double t0 = now_seconds();

		capture_pass(pid, xstate, stack);
		ms[r] = (now_seconds() - t0) * 1e3;
		tmp[r] = ms[r];
		if (o.verbose)
			fprintf(stderr, "pass %d: %d threads in %.3f ms\n", r + 1, ntids, ms[r]);
	}
	end_tracee(pid);
	printf("{\"threads\":%d,\"runs\":", ntids);
	print_array(ms, o.runs, 4);
	printf(",\"median_ms\":%.4f}\n", median(tmp, o.runs));
	free(ms);
	free(tmp);
	return 0;
}
