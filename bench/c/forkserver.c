/* forkserver: AFL's fork-server loop on the parse fixture, the baseline of the snapshot-fuzzing
 * bench (bench/restore.ts). The program parses once (a warm-up) and reaches the point (fuzz_start);
 * each iteration forks it there, the child writes its input, runs parse() to fuzz_end and exits, and
 * the parent reaps it.
 * Prints one JSON line: the median iterations per second over the runs. */
#define _GNU_SOURCE
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define main parse_fixture_main /* the fixture's own loop is not used */
#include "../../fixtures/c/parse.c"
#undef main

static const char usage[] = "forkserver [--runs R] [--iterations I] [-v]";

int main(int argc, char **argv)
{
	struct bench_opts o;
	double *rates;

	parse_opts(argc, argv, &o, usage);
	rates = calloc((size_t)o.runs, sizeof *rates);
	if (!rates)
		die(1, "calloc");
	g_result = parse(g_input, sizeof g_input); /* one warm-up parse: the allocator's heap exists */
	fuzz_start(); /* the point: everything before it happened once, in this process */
	for (int r = 0; r < o.runs; r++) {
		double t0 = now_seconds();
		for (int i = 0; i < o.iterations; i++) {
			pid_t pid = fork();
			if (pid < 0)
				die(1, "fork");
			if (pid == 0) {
				g_input[0] = (unsigned char)i;
				g_result = parse(g_input, sizeof g_input);
				fuzz_end(g_result);
				_exit(0);
			}
			int status;
			if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
				die(1, "waitpid");
		}
		rates[r] = o.iterations / (now_seconds() - t0);
		if (o.verbose)
			fprintf(stderr, "run %d: %.0f it/s\n", r + 1, rates[r]);
	}
	printf("{\"iterations\":%d,\"median_per_s\":%.1f}\n", o.iterations, median(rates, o.runs));
	free(rates);
	return 0;
}
