// json_simdjson.cc - the simdjson contender of the JSON scanner benchmark (issue 6): the
// same lines, the same loop and the same output line as bench/json_scan.c, parsed with
// simdjson's DOM parser (a vectorised two-stage parser that validates everything and
// builds a tape of every value), as the reference for what a SIMD JSON parser costs on
// this machine. Optional: bench/run builds it only when libsimdjson-dev is installed.
//
// Usage: json_simdjson FILE [-m MAX_MIB]
// Build: c++ -O2 -std=c++17 -o build/json_simdjson bench/json_simdjson.cc -lsimdjson
#include <simdjson.h>

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

static double now_s()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

static double tv_s(timeval tv)
{
    return double(tv.tv_sec) + double(tv.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
    size_t max = 0;
    if (argc == 4 && std::strcmp(argv[2], "-m") == 0)
        max = size_t(std::atol(argv[3])) << 20;
    else if (argc != 2) {
        std::fprintf(stderr, "usage: json_simdjson FILE [-m MAX_MIB]\n");
        return 2;
    }
    std::FILE *f = std::fopen(argv[1], "rb");
    if (!f) {
        std::perror(argv[1]);
        return 1;
    }
    std::string buf;
    char tmp[1 << 16];
    size_t got;
    while ((got = std::fread(tmp, 1, sizeof(tmp), f)) > 0 && (!max || buf.size() < max))
        buf.append(tmp, got);
    std::fclose(f);
    if (max && buf.size() > max)
        buf.resize(max);
    while (!buf.empty() && buf.back() != '\n')
        buf.pop_back();
    size_t len = buf.size();
    buf.append(simdjson::SIMDJSON_PADDING, ' '); // simdjson may read this far past a line
    simdjson::dom::parser parser;
    unsigned long long lines = 0, errors = 0;
    rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = now_s();
    for (size_t pos = 0; pos < len;) {
        const char *s = buf.data() + pos;
        const char *nl = static_cast<const char *>(std::memchr(s, '\n', len - pos));
        size_t n = size_t(nl - s);
        // parsed in place, as mars does: the bytes after the line (the next lines, or the
        // padding after the last) are simdjson's padding; the length given is the line's
        auto doc = parser.parse(reinterpret_cast<const uint8_t *>(s), n, false);
        if (doc.error())
            errors++;
        lines++;
        pos += n + 1;
    }
    double wall = now_s() - t0;
    getrusage(RUSAGE_SELF, &r1);
    std::printf("lines %llu bytes %zu errors %llu wall_s %.6f user_s %.6f sys_s %.6f maxrss_kib %ld\n",
                lines, len, errors, wall, tv_s(r1.ru_utime) - tv_s(r0.ru_utime),
                tv_s(r1.ru_stime) - tv_s(r0.ru_stime), r1.ru_maxrss);
    return 0;
}
