/* Emulates a slower disk for bench_writes: every fdatasync/fsync first waits SLOW_SYNC_US
 * microseconds (default 1000), then does the real call. Used through LD_PRELOAD to show how
 * group commit behaves where a sync costs what it does on network block storage (~1 ms), which
 * this VM's disk (~0.1 ms) does not. See docs/BENCHMARKS.md, bench_writes.
 *
 *   gcc -shared -fPIC -O2 -o /tmp/slow_sync.so scripts/bench/slow_sync.c -ldl
 *   LD_PRELOAD=/tmp/slow_sync.so target/release/examples/bench_writes
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static long delay_us(void) {
    const char *v = getenv("SLOW_SYNC_US");
    return v ? atol(v) : 1000;
}

static void wait_a_little(void) {
    long us = delay_us();
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    wait_a_little();
    return real(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    wait_a_little();
    return real(fd);
}
