/* The micro rows of the overhead benchmark: the same kinds of event as Phoronix
 * OSBench's tests (create files, create threads, create processes, launch programs,
 * allocate memory), each timed over N events inside the container under test.
 * Prints the time per event: microseconds, or nanoseconds for `malloc`.
 *
 *   micro files N DIR     create N empty files in DIR (open O_CREAT + close), then remove them
 *   micro threads N       pthread_create + pthread_join, N times
 *   micro processes N     fork + _exit + waitpid, N times
 *   micro launch N PROG   posix_spawn PROG (no arguments) + waitpid, N times
 *   micro malloc N        malloc + touch + free of sizes from 16 B to 64 KiB, N times
 *   micro noop            does nothing: the program `launch` starts
 * Static, so that it runs in any image. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static void *thread_body(void *arg) { return arg; }

static int die(const char *what)
{
	perror(what);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "noop") == 0)
		return 0;
	if (argc < 3) {
		fprintf(stderr, "usage: %s files|threads|processes|launch|malloc N [DIR|PROG]\n", argv[0]);
		return 2;
	}
	const char *test = argv[1];
	long n = atol(argv[2]);
	double start, elapsed;
	if (strcmp(test, "files") == 0) {
		if (argc < 4) return 2;
		char path[4096];
		start = now_ns();
		for (long i = 0; i < n; i++) {
			snprintf(path, sizeof path, "%s/f%ld", argv[3], i);
			int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
			if (fd < 0) return die(path);
			close(fd);
		}
		elapsed = now_ns() - start;
		for (long i = 0; i < n; i++) {
			snprintf(path, sizeof path, "%s/f%ld", argv[3], i);
			unlink(path);
		}
		printf("%.3f\n", elapsed / n / 1e3);
	} else if (strcmp(test, "threads") == 0) {
		start = now_ns();
		for (long i = 0; i < n; i++) {
			pthread_t t;
			if (pthread_create(&t, NULL, thread_body, NULL) != 0) return die("pthread_create");
			pthread_join(t, NULL);
		}
		printf("%.3f\n", (now_ns() - start) / n / 1e3);
	} else if (strcmp(test, "processes") == 0) {
		start = now_ns();
		for (long i = 0; i < n; i++) {
			pid_t p = fork();
			if (p < 0) return die("fork");
			if (p == 0) _exit(0);
			waitpid(p, NULL, 0);
		}
		printf("%.3f\n", (now_ns() - start) / n / 1e3);
	} else if (strcmp(test, "launch") == 0) {
		if (argc < 4) return 2;
		char *child_argv[] = { argv[3], "noop", NULL };
		start = now_ns();
		for (long i = 0; i < n; i++) {
			pid_t p;
			if (posix_spawn(&p, argv[3], NULL, NULL, child_argv, environ) != 0) return die("posix_spawn");
			waitpid(p, NULL, 0);
		}
		printf("%.3f\n", (now_ns() - start) / n / 1e3);
	} else if (strcmp(test, "malloc") == 0) {
		unsigned seed = 12345;
		start = now_ns();
		for (long i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			size_t size = 16 + (seed >> 8) % 65536;
			char *p = malloc(size);
			if (!p) return die("malloc");
			p[0] = (char)i;
			p[size - 1] = (char)i;
			free(p);
		}
		printf("%.3f\n", (now_ns() - start) / n);
	} else {
		fprintf(stderr, "unknown test %s\n", test);
		return 2;
	}
	return 0;
}
