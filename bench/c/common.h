/* Shared helpers for the ptrace C baselines: options, pinning, launching a tracee, breakpoints, stats. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct bench_opts {
	int pin;        /* --pin: run tracer and tracee on one CPU */
	int runs;       /* --runs R */
	int iterations; /* --iterations I (launch_main) */
	int verbose;    /* -v: per-run lines on stderr */
	int cpu;        /* CPU pinned to, or -1 */
	int nargs;      /* positional arguments left */
	char **args;
};

/* Parse the common options; positional arguments end up in opts->args. */
void parse_opts(int argc, char **argv, struct bench_opts *opts, const char *usage);
/* Print a message (with errno text if errno_too) to stderr, kill and reap the tracee, exit 1. */
__attribute__((noreturn, format(printf, 2, 3))) void die(int errno_too, const char *fmt, ...);
/* Pin this process (and its future children) to the first CPU of its current mask. */
int pin_first_cpu(void);
/* fork, PTRACE_TRACEME, ASLR off, execv(argv); returns the pid stopped at the exec SIGTRAP. */
pid_t launch_traced(char *const argv[]);
/* Kill and reap the current tracee, if any. */
void kill_tracee(void);
/* Load bias of the main executable of pid: the start of its first offset-0 mapping for ET_DYN, 0 for ET_EXEC. */
uint64_t load_bias(pid_t pid);
/* Parse a hex offset ("0x1139" or "1139"). */
uint64_t parse_hex(const char *s);
/* Write int3 at addr; returns the original word. */
long insert_int3(pid_t pid, uint64_t addr);
/* waitpid with EINTR retry; dies if the tracee exits unless allow_exit. Returns the status. */
int wait_tracee(pid_t pid, int allow_exit);
/* Monotonic time in seconds. */
double now_seconds(void);
/* Median of n doubles (the array is sorted in place). */
double median(double *v, int n);
/* Print a JSON array of doubles with the given precision. */
void print_array(const double *v, int n, int precision);

#endif
