/* Shared helpers for the ptrace C baselines. */
#define _GNU_SOURCE
#include "common.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile pid_t g_tracee = -1;

void kill_tracee(void)
{
	pid_t pid = g_tracee;
	int status;

	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, __WALL) == pid) {
		if (WIFEXITED(status) || WIFSIGNALED(status))
			break;
	}
	g_tracee = -1;
}

void die(int errno_too, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	kill_tracee();
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (errno_too)
		fprintf(stderr, ": %s", strerror(saved));
	fputc('\n', stderr);
	exit(1);
}

static void on_signal(int sig)
{
	/* kill_tracee only uses async-signal-safe calls. */
	kill_tracee();
	signal(sig, SIG_DFL);
	raise(sig);
}

void parse_opts(int argc, char **argv, struct bench_opts *opts, const char *usage)
{
	int i;

	memset(opts, 0, sizeof *opts);
	opts->runs = 1;
	opts->iterations = 100;
	opts->cpu = -1;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--pin") == 0) {
			opts->pin = 1;
		} else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
			opts->verbose = 1;
		} else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
			opts->runs = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
			opts->iterations = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (argv[i][0] == '-' && argv[i][1] == '-') {
			fprintf(stderr, "unknown option %s\nusage: %s\n", argv[i], usage);
			exit(2);
		} else {
			break;
		}
	}
	if (opts->runs < 1 || opts->iterations < 1) {
		fprintf(stderr, "--runs and --iterations must be >= 1\nusage: %s\n", usage);
		exit(2);
	}
	opts->args = argv + i;
	opts->nargs = argc - i;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	if (opts->pin)
		opts->cpu = pin_first_cpu();
}

int pin_first_cpu(void)
{
	cpu_set_t set;
	int cpu;

	if (sched_getaffinity(0, sizeof set, &set) != 0)
		die(1, "sched_getaffinity");
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set))
			break;
	if (cpu == CPU_SETSIZE)
		die(0, "no CPU in the affinity mask");
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0)
		die(1, "sched_setaffinity(%d)", cpu);
	return cpu;
}

pid_t launch_traced(char *const argv[])
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die(1, "fork");
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		/* stdout belongs to our one JSON line: the tracee gets /dev/null for stdin and stdout. */
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			if (null > 2)
				close(null);
		}
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		if (personality(ADDR_NO_RANDOMIZE) == -1)
			_exit(126);
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
			_exit(126);
		execv(argv[0], argv);
		fprintf(stderr, "execv %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	g_tracee = pid;
	status = wait_tracee(pid, 1);
	if (WIFEXITED(status))
		die(0, "%s: exited with %d before the exec stop", argv[0], WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		die(0, "%s: killed by signal %d before the exec stop", argv[0], WTERMSIG(status));
	if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP)
		die(0, "%s: expected the exec SIGTRAP stop, got status 0x%x", argv[0], status);
	if (ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)(long)PTRACE_O_EXITKILL) != 0)
		die(1, "PTRACE_SETOPTIONS");
	return pid;
}

int wait_tracee(pid_t pid, int allow_exit)
{
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, __WALL);

		if (r == pid)
			break;
		if (r < 0 && errno == EINTR)
			continue;
		die(1, "waitpid(%d)", (int)pid);
	}
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		g_tracee = -1;
		if (!allow_exit) {
			if (WIFEXITED(status))
				die(0, "tracee exited unexpectedly with %d", WEXITSTATUS(status));
			die(0, "tracee killed unexpectedly by signal %d", WTERMSIG(status));
		}
	}
	return status;
}

static int exe_type(pid_t pid)
{
	char path[64];
	Elf64_Ehdr eh;
	int fd;
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die(1, "open %s", path);
	n = pread(fd, &eh, sizeof eh, 0);
	close(fd);
	if (n != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64)
		die(0, "%s: not a 64-bit ELF file", path);
	return eh.e_type;
}

uint64_t load_bias(pid_t pid)
{
	char path[64], exe[PATH_MAX], line[PATH_MAX + 128];
	uint64_t bias = 0;
	int found = 0;
	ssize_t n;
	FILE *f;

	if (exe_type(pid) == ET_EXEC)
		return 0;
	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof exe - 1);
	if (n < 0)
		die(1, "readlink %s", path);
	exe[n] = '\0';
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		die(1, "open %s", path);
	while (fgets(line, sizeof line, f)) {
		unsigned long start, end, offset;
		char perms[8], name[PATH_MAX];
		int pos = 0;

		name[0] = '\0';
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s%n", &start, &end, perms, &offset, &pos) < 4)
			continue;
		if (sscanf(line + pos, " %4095[^\n]", name) != 1)
			continue;
		if (offset == 0 && strcmp(name, exe) == 0) {
			bias = start;
			found = 1;
			break;
		}
	}
	fclose(f);
	if (!found)
		die(0, "no offset-0 mapping of %s in /proc/%d/maps", exe, (int)pid);
	return bias;
}

uint64_t parse_hex(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 16);
	if (errno || end == s || *end != '\0')
		die(0, "not a hex offset: %s", s);
	return v;
}

long insert_int3(pid_t pid, uint64_t addr)
{
	long orig;

	errno = 0;
	orig = ptrace(PTRACE_PEEKTEXT, pid, (void *)addr, NULL);
	if (orig == -1 && errno)
		die(1, "PTRACE_PEEKTEXT 0x%llx", (unsigned long long)addr);
	if (ptrace(PTRACE_POKETEXT, pid, (void *)addr, (void *)((orig & ~0xffL) | 0xcc)) != 0)
		die(1, "PTRACE_POKETEXT 0x%llx", (unsigned long long)addr);
	return orig;
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void print_array(const double *v, int n, int precision)
{
	putchar('[');
	for (int i = 0; i < n; i++)
		printf("%s%.*f", i ? "," : "", precision, v[i]);
	putchar(']');
}
