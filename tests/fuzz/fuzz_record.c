/*
 * fuzz_record.c - libFuzzer target: the record layer's validation of request bodies, with the
 * richest declarations of the project (a line of the four protocols, a user with its
 * linefeatures rows, voicemail, function keys and skills). The first byte picks the table, the
 * rest is the JSON body as a client sends it. An accepted body must store, load back and render
 * (a line's linefeatures loaded alone render as when loaded whole); a refused one must carry a
 * 400 with an error code and a field. The body's msgpack is also loaded as a stored record, in
 * part (svc_record_load_stored_only): refused or loaded, never a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lines.h"
#include "svc.h"
#include "users.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const svc_table_t *t = data[0] % 2 == 0 ? &lines_table : &users_body_table;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (xws_json_to_msgpack((const char *)data + 1, size - 1, &sb, NULL, 0) != 0) {
        msgpack_sbuffer_destroy(&sb);
        return 0;
    }
    msgpack_unpacked u;
    if (svc_mp_unpack(&u, sb.data, sb.size) != 0)
        abort(); /* what the JSON decoder wrote must unpack */
    svc_ctx_t ctx;
    svc_ctx_init(&ctx, NULL, NULL, "f:", 0, NULL);
    svc_record_t *rec = svc_record_new(t);
    int rc = -2; /* not a map: nothing to validate */
    if (u.data.type == MSGPACK_OBJECT_MAP) {
        rc = svc_record_load_body_or_reply(&ctx, rec, &u.data);
        if (rc == 0) {
            svc_record_defaults(rec);
            if (t == &lines_table)
                rc = lines_fix_or_reply(&ctx, rec);
        }
        if (rc == 0)
            rc = svc_record_check_or_reply(&ctx, rec);
    }
    if (rc == 0) {
        size_t len;
        const char *blob = svc_record_blob(&ctx, rec, &len);
        svc_record_t *back = svc_record_new(t);
        if (svc_record_load_stored(back, blob, len) != 0)
            abort(); /* a stored record must load back */
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
        svc_record_render(back, &pk);
        if (t == &lines_table) { /* the linefeatures alone, as a view loads them: the same part */
            static const char *const only[] = {"linefeatures", NULL};
            svc_record_t *part = svc_record_new(t);
            if (svc_record_load_stored_only(part, blob, len, only) != 0)
                abort();
            msgpack_sbuffer a, b;
            msgpack_sbuffer_init(&a);
            msgpack_sbuffer_init(&b);
            msgpack_packer pa, pb;
            msgpack_packer_init(&pa, &a, msgpack_sbuffer_write);
            msgpack_packer_init(&pb, &b, msgpack_sbuffer_write);
            svc_record_render(svc_record_obj(back, "linefeatures"), &pa);
            svc_record_render(svc_record_obj(part, "linefeatures"), &pb);
            if (a.size != b.size || (a.size > 0 && memcmp(a.data, b.data, a.size) != 0))
                abort();
            msgpack_sbuffer_destroy(&a);
            msgpack_sbuffer_destroy(&b);
            svc_record_destroy(&part);
        }
        msgpack_sbuffer_destroy(&out);
        svc_record_destroy(&back);
    } else if (rc == -1 && (ctx.status != 400 || ctx.body.size == 0)) {
        abort(); /* a refusal is a 400 with a body naming the error */
    }
    { /* any bytes as a stored record, part of it: refused or loaded, never a crash */
        static const char *const only[] = {"linefeatures", "userfeatures", NULL};
        svc_record_t *any = svc_record_new(t);
        (void)svc_record_load_stored_only(any, sb.data, sb.size, only);
        svc_record_destroy(&any);
    }
    svc_record_destroy(&rec);
    svc_ctx_dispose(&ctx);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}
