/* The floor of issue 18's `make bench-instructions`: the least a daemon must do per METRIC
 * record. It recv()s the same byte stream logd gets (length-prefixed Wire frames on a Unix
 * socket, fd 0), decodes each 33-byte METRIC frame (and each entry of a METRIC_BATCH), and
 * appends the byte-identical metrics.csv line logd writes (ISO-8601 time with milliseconds
 * cached per second, step, `context,key,`, shortest value, `,rank,source`) to a buffer written
 * out with write(2) in 64 KiB chunks. No numbering, no acknowledgements, no checkpoint: a
 * floor, not a daemon. One key (`training`, `m0`, rank 0, no source), as the workload logs.
 *
 *   floor OUT.csv < socket      (bench/instructions.py runs it under callgrind)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>

static char out[1 << 17];
static size_t used;
static int outfd;
static int64_t cached_second = INT64_MIN;
static char prefix[32];
static size_t prefix_len;

static void flush_out(void) {
    size_t off = 0;
    while (off < used) {
        ssize_t n = write(outfd, out + off, used - off);
        if (n <= 0) { perror("write"); exit(1); }
        off += (size_t)n;
    }
    used = 0;
}

static void put_uint(uint64_t v) {
    char tmp[20];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) out[used++] = tmp[--n];
}

static void put_int(int64_t v) {
    if (v < 0) { out[used++] = '-'; put_uint((uint64_t)0 - (uint64_t)v); } else put_uint((uint64_t)v);
}

static void put_time(int64_t ns) {
    int64_t s = ns / 1000000000, r = ns % 1000000000;
    if (r < 0) { s -= 1; r += 1000000000; }
    if (s != cached_second) {
        time_t t = (time_t)s;
        struct tm tm;
        gmtime_r(&t, &tm);
        prefix_len = strftime(prefix, sizeof prefix, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_second = s;
    }
    memcpy(out + used, prefix, prefix_len);
    used += prefix_len;
    int ms = (int)(r / 1000000);
    out[used++] = '.';
    out[used++] = (char)('0' + ms / 100);
    out[used++] = (char)('0' + ms / 10 % 10);
    out[used++] = (char)('0' + ms % 10);
    out[used++] = 'Z';
}

static void put_value(double d) {
    if (d == (double)(int64_t)d && d < 1e15 && d > -1e15) {
        put_int((int64_t)d);
        out[used++] = '.';
        out[used++] = '0';
    } else {
        used += (size_t)snprintf(out + used, 32, "%.17g", d);
    }
}

static void metric(const unsigned char *b) {
    int64_t step, ts;
    double value;
    memcpy(&step, b + 4, 8);
    memcpy(&ts, b + 12, 8);
    memcpy(&value, b + 20, 8);
    put_time(ts);
    out[used++] = ',';
    if (step != INT64_MIN) put_int(step);
    memcpy(out + used, ",training,m0,", 13);
    used += 13;
    put_value(value);
    memcpy(out + used, ",0,\n", 4);
    used += 4;
    if (used > sizeof out - 256) flush_out();
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: floor OUT.csv < socket\n"); return 2; }
    outfd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (outfd < 0) { perror(argv[1]); return 1; }
    static unsigned char in[1 << 20];
    size_t start = 0, end = 0;
    for (;;) {
        ssize_t n = recv(0, in + end, sizeof in - end, 0);
        if (n < 0) { perror("recv"); return 1; }
        if (n == 0) break;
        end += (size_t)n;
        while (end - start >= 4) {
            uint32_t len;
            memcpy(&len, in + start, 4);
            if (end - start < 4 + (size_t)len) break;
            const unsigned char *f = in + start + 4;
            if (f[0] == 0x22 && len == 29) {
                metric(f + 1);
            } else if (f[0] == 0x23) {
                uint32_t count;
                memcpy(&count, f + 1, 4);
                for (uint32_t i = 0; i < count; i++) metric(f + 5 + 28 * (size_t)i);
            }
            start += 4 + (size_t)len;
        }
        memmove(in, in + start, end - start);
        end -= start;
        start = 0;
    }
    flush_out();
    fsync(outfd);
    close(outfd);
    return 0;
}
