/*
 * extensions.h - the extensions service (xws-extensions): the `extensions` resource (spec §5.7,
 * path system_management/extensions, restricted only): the free numbers of a context.
 *
 * The service owns no key. It reads the context's ranges (svc_context_ranges_or_reply) and the
 * shared sorted index of the numbers in use, <p>context:numidx:<ctx>, that every service taking
 * numbers maintains through the prelude (services/common/README.md, "Numbers and references").
 *
 * The walk (ext_walk.c) costs what its answer costs: the ranges are merged per number of digits,
 * each candidate comes from the previous one in O(digits²) (the substring filter included, so a
 * filter that matches few numbers of a large range does not visit the others), and the used
 * numbers are read ahead of the walk in bounded batches (ZRANGEBYSCORE ... LIMIT), each used
 * number at most once. Nothing the size of a range, nor of the answer, is held by the walk: each
 * free number is handed to a callback as it is found (the handler packs it into the reply).
 */
#ifndef EXTENSIONS_H
#define EXTENSIONS_H

#include "svc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The first batch of used numbers read per group of ranges, and the cap of the doubling batches. */
#define EXT_BATCH_FIRST 64
#define EXT_BATCH_MAX 8192

/* What one walk cost (filled in by ext_walk_or_reply when not NULL). */
typedef struct {
    size_t fetches;  /* ZRANGEBYSCORE calls */
    size_t used;     /* used numbers read from the index (all lengths) */
    size_t held_max; /* the most used numbers held at once */
    size_t visited;  /* candidates looked at (free or used) */
} ext_walk_stats_t;

/* Called with each free number, in ascending order, each once. */
typedef void (*ext_emit_fn)(void *arg, long long number);

/*
 * Walks the free numbers of type ("user", "group", "queue", "meetme", "incall") in context:
 * every number of the type's ranges that nothing uses in the context, ascending, without
 * duplicates, only those whose decimal text (zero-padded to the range's width) contains
 * `contains` when it is not NULL or "", at most limit of them (0: no limit). emit is called once
 * per number. 0, or -1 with the reply set (404 unknown context, 400 unknown type, 500).
 */
int ext_walk_or_reply(svc_ctx_t *ctx, const char *context, const char *type, const char *contains, size_t limit, ext_emit_fn emit,
                      void *arg, ext_walk_stats_t *stats);

/*
 * The smallest number >= x of exactly `digits` digits (zero-padded) whose text contains pattern
 * (m digits; m == 0: x itself), or -1 when there is none below 10^digits.
 */
long long ext_next_match(long long x, int digits, const char *pattern, size_t m);

/* The resource as registered in the service's resource table (default act: search). */
extern const svc_resource_t extensions_resource;

#ifdef __cplusplus
}
#endif
#endif
