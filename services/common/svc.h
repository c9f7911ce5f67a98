/*
 * svc.h - the worker library: include this one header to write a service.
 * See README.md beside it for how a service is put together.
 */
#ifndef SVC_H
#define SVC_H

#include "svc_log.h"
#include "svc_util.h"
#include "svc_mp.h"
#include "svc_coro.h"
#include "svc_redis.h"
#include "svc_ctx.h"
#include "svc_etag.h"
#include "svc_field.h"
#include "svc_crud.h"
#include "svc_index.h"
#include "svc_number.h"
#include "svc_worker.h"

#endif
