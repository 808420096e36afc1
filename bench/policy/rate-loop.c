/* Opens and closes one file RATE*SECONDS times at a steady RATE per second (or as fast as
 * it can when that is slower): the load of the policy benchmark, every open of a watched
 * path an event, the same number of events in every run. Prints "go" when it starts and
 * "done OPENS SECONDS" when it ends, each line flushed at once. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s PATH RATE SECONDS\n", argv[0]);
		return 2;
	}
	double rate = atof(argv[2]), seconds = atof(argv[3]);
	printf("go\n");
	fflush(stdout);
	long total = (long)(rate * seconds);
	double start = now(), t = start;
	long n = 0;
	while (n < total) {
		/* A batch of opens, then sleep until the schedule says the next batch is due. */
		for (int i = 0; i < 100 && n < total; i++, n++) {
			int fd = open(argv[1], O_RDONLY);
			if (fd < 0) {
				perror(argv[1]);
				return 1;
			}
			close(fd);
		}
		t = now();
		double due = start + n / rate;
		if (due > t) {
			struct timespec d = { (time_t)(due - t), (long)(((due - t) - (time_t)(due - t)) * 1e9) };
			nanosleep(&d, NULL);
			t = now();
		}
	}
	printf("done %ld %.3f\n", n, t - start);
	fflush(stdout);
	return 0;
}
