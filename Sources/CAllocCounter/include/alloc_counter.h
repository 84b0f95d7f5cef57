#ifndef LOGD_ALLOC_COUNTER_H
#define LOGD_ALLOC_COUNTER_H
#include <stdint.h>
/// Number of malloc/calloc/realloc/posix_memalign calls made by this process so far
/// (the benchmark links this target, which interposes those functions and counts them).
uint64_t logd_alloc_count(void);
#endif
