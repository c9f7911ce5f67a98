/*
 * svc_number - the number and reference rules shared by every service that owns numbered objects
 * (lines, groups, queues, meetmes, incalls): which numbers are taken in a context, the ranges of
 * a context, and the sorted index of used numbers that the extensions service walks (its free-number
 * search lives there). The writes are Lua helpers of the prelude, called by a
 * service's own write function in the same atomic call as its object:
 *
 *     local err = xws_number_check(numbers, ctxdata, ctx, num, 'user', 'line/' .. id, 'linefeatures.number')
 *     if err then return err end
 *     ... (every other check)
 *     xws_number_take(numbers, numidx, num, 'user', 'line/' .. id)
 *     xws_refs_add(ctxrefs, ctx, 1)
 *
 * Keys (under the prefix), written only through those helpers:
 *   context:numbers:<ctx>  hash number -> "<type>:<owner>" (type user, group, queue, meetme, incall;
 *                          lines count as user): a number is taken at most once per context
 *   context:numidx:<ctx>   sorted set of the all-digit numbers of that hash, score = the number
 *   context:refs           hash context name -> number of objects of other services using it
 *   context:data           the context records (config service); their ranges are read with
 *                          xws_context_ranges (Lua) or svc_context_ranges_or_reply (C) only
 */
#ifndef SVC_NUMBER_H
#define SVC_NUMBER_H

#include "svc_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SVC_NUMBER_MAX_DIGITS 16

/* A range of numbers: equal-length digit strings; end "" = the single number beg; beg "" (incall) = any number. */
typedef struct {
    char beg[SVC_NUMBER_MAX_DIGITS + 1];
    char end[SVC_NUMBER_MAX_DIGITS + 1];
} svc_range_t;

/* The key names of context name (pooled). */
const char *svc_number_key(svc_ctx_t *ctx, const char *context);
const char *svc_number_idx_key(svc_ctx_t *ctx, const char *context);

/* 1 when num lies in range r (the bounds' number of digits and beg <= num <= end), else 0. */
int svc_number_in_range(const char *num, const svc_range_t *r);

/*
 * The ranges of type ("user", "group", "queue", "meetme", "incall") of context name: *out (n
 * entries, freed by the caller; NULL when none). 0, or -1 with the reply set (404 not_found
 * "context" for an unknown context, 400 invalid_value "obj" for an unknown type, 500).
 */
int svc_context_ranges_or_reply(svc_ctx_t *ctx, const char *context, const char *type, svc_range_t **out, size_t *n);

void svc_number_test(void);

#ifdef __cplusplus
}
#endif
#endif
