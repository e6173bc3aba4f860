/* procsnap's launcher (see ../launcher.ts): freestanding x86_64, raw syscalls, no libc, no data.
 * Dies with its parent thread (PR_SET_PDEATHSIG); waits for its go message on fd 3 (end-of-file:
 * exits), optionally makes new user, PID, UTS and mount namespaces (a tiny init as pid 1 forks the
 * target as pid 2), fixes the program's randomness, closes fds >= 3,
 * then execve(argv[1], argv+2, envp). Regenerate the bytes in ../launcher.ts with ./build.sh.
 *
 * Message: u8 mode (1 exec, 2 also no_new_privs + seccomp filter + rdtsc faulting), then (absent
 * means 0) u8 flags (1: isolate), u16 filter length, u32 0, filter (8 bytes an instruction), then when isolating
 * five NUL-terminated strings: uid_map line, gid_map line, hostname, domain name, inner cwd ("" to
 * keep the cwd).
 * A failed namespace step executes int3 with rdi = step, rsi = errno: the tracer reads them. */
typedef unsigned long u64;
typedef unsigned short u16;

enum {
	SYS_read = 0, SYS_write = 1, SYS_open = 2, SYS_close = 3, SYS_clone = 56, SYS_fork = 57,
	SYS_execve = 59, SYS_wait4 = 61, SYS_chdir = 80, SYS_setsid = 112, SYS_setgroups = 116,
	SYS_prctl = 157, SYS_mount = 165, SYS_sethostname = 170, SYS_setdomainname = 171,
	SYS_exit_group = 231, SYS_unshare = 272, SYS_seccomp = 317, SYS_close_range = 436,
};

#define CLONE_NEWNS 0x00020000L
#define CLONE_PARENT 0x00008000L
#define CLONE_NEWUTS 0x04000000L
#define CLONE_NEWUSER 0x10000000L
#define CLONE_NEWPID 0x20000000L
#define SIGCHLD 17
#define SIGKILL 9
#define MS_NOSUID 2L
#define MS_NODEV 4L
#define MS_NOEXEC 8L
#define MS_BIND 4096L
#define MS_REC 16384L
#define MS_PRIVATE (1L << 18)
#define O_WRONLY 1
#define EINTR 4

static long sys(long n, long a, long b, long c, long d, long e)
{
	long r;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8) : "rcx", "r11", "memory");
	return r;
}

static __attribute__((noreturn)) void leave(long code)
{
	for (;;) sys(SYS_exit_group, code, 0, 0, 0, 0);
}

/* A namespace step failed: stop for the tracer (SIGTRAP) with the step and errno in rdi, rsi. */
static __attribute__((noreturn)) void fail(long step, long ret)
{
	__asm__ volatile("int3" : : "D"(step), "S"(-ret));
	leave(126);
}

static long length(const char *s)
{
	long n = 0;
	while (s[n]) n++;
	return n;
}

static long write_file(const char *path, const char *text)
{
	long fd = sys(SYS_open, (long)path, O_WRONLY, 0, 0, 0);
	if (fd < 0) return fd;
	long r = sys(SYS_write, fd, (long)text, length(text), 0, 0);
	sys(SYS_close, fd, 0, 0, 0, 0);
	return r < 0 ? r : 0;
}

static long check(long step, long r)
{
	if (r < 0) fail(step, r);
	return r;
}

/* New namespaces; returns in the target (pid 2), after the init (pid 1) forked it. */
static void isolate(const char *p)
{
	const char *uid_map = p;
	const char *gid_map = uid_map + length(uid_map) + 1;
	const char *host = gid_map + length(gid_map) + 1;
	const char *domain = host + length(host) + 1;
	const char *cwd = domain + length(domain) + 1;
	sys(SYS_setgroups, 0, 0, 0, 0, 0); /* no supplementary groups, where allowed (root) */
	check(1, sys(SYS_unshare, CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWNS, 0, 0, 0, 0));
	check(2, write_file("/proc/self/setgroups", "deny"));
	check(3, write_file("/proc/self/uid_map", uid_map));
	check(4, write_file("/proc/self/gid_map", gid_map));
	check(5, sys(SYS_sethostname, (long)host, length(host), 0, 0, 0));
	check(5, sys(SYS_setdomainname, (long)domain, length(domain), 0, 0, 0));
	check(6, sys(SYS_mount, 0, (long)"/", 0, MS_REC | MS_PRIVATE, 0));
	if (*cwd) {
		check(7, sys(SYS_mount, (long)".", (long)cwd, 0, MS_BIND | MS_REC, 0));
		check(8, sys(SYS_chdir, (long)cwd, 0, 0, 0, 0));
	}
	/* The init is a child of our parent (the tracer), so the tracer reaps it; this launcher ends. */
	if (check(9, sys(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0)) > 0) leave(0);
	sys(SYS_prctl, 1 /* PR_SET_PDEATHSIG */, SIGKILL, 0, 0, 0);
	sys(SYS_prctl, 15 /* PR_SET_NAME */, (long)"procsnap-init", 0, 0, 0); /* not the memfd's fd number */
	check(10, sys(SYS_setsid, 0, 0, 0, 0, 0));
	check(11, sys(SYS_mount, (long)"proc", (long)"/proc", (long)"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0));
	long target = check(12, sys(SYS_fork, 0, 0, 0, 0, 0));
	if (target == 0) return;
	/* pid 1: reap every orphan until the target ends, then end with its status. */
	sys(SYS_close_range, 0, ~0U, 0, 0, 0);
	for (;;) {
		int status = 0;
		long r = sys(SYS_wait4, -1, (long)&status, 0x40000000 /* __WALL */, 0, 0);
		if (r == target) leave(status & 0x7f ? 128 + (status & 0x7f) : (status >> 8) & 0xff);
		if (r < 0 && r != -EINTR) leave(127);
	}
}

__attribute__((used)) static void launch(long *sp)
{
	char message[4096];
	for (int i = 0; i < 8; i++) message[i] = 0; /* a message of 1 byte (mode 1) has no flags, no filter */
	/* Die with the tracer's thread, even before it seized us; a tracer gone earlier closed the pipe: end-of-file. */
	sys(SYS_prctl, 1 /* PR_SET_PDEATHSIG */, SIGKILL, 0, 0, 0);
	if (sys(SYS_read, 3, (long)message, sizeof message, 0, 0) < 1) leave(0); /* no go: the tracer is gone */
	u16 filter_length = (u16)((unsigned char)message[2] | (unsigned char)message[3] << 8);
	if (message[1] & 1) isolate(message + 8 + 8 * filter_length);
	if (message[0] == 2) {
		struct { u64 len; char *filter; } program = { filter_length, message + 8 };
		sys(SYS_prctl, 38 /* PR_SET_NO_NEW_PRIVS */, 1, 0, 0, 0);
		sys(SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, 0, (long)&program, 0, 0);
		sys(SYS_prctl, 26 /* PR_SET_TSC */, 2 /* PR_TSC_SIGSEGV */, 0, 0, 0);
	}
	sys(SYS_close_range, 3, ~0U, 0, 0, 0);
	sys(SYS_close, 3, 0, 0, 0, 0); /* kernels < 5.9 */
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	long r = sys(SYS_execve, (long)argv[1], (long)(argv + 2), (long)(argv + argc + 1), 0, 0);
	leave(-r);
}

__asm__(".section .text.start,\"ax\"\n.globl _start\n_start:\n\tmov %rsp, %rdi\n\tcall launch\n\thlt\n");
