/* svc_mp.c - see svc_mp.h */
#include <stdlib.h>
#include <string.h>
#include "svc_mp.h"
#include "svc_util.h"

const msgpack_object *svc_mp_get(const msgpack_object *map, const char *key)
{
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = map->via.map.size; i-- > 0;) { /* from the end: the last occurrence wins, as in JSON */
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen && memcmp(k->via.str.ptr, key, klen) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

int svc_mp_write(void *sbuffer, const char *buf, size_t len)
{
    return xws_sbuffer_write(sbuffer, buf, len); /* starts small, aborts when out of memory */
}

int svc_mp_str_eq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o != NULL && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n && memcmp(o->via.str.ptr, s, n) == 0;
}

xws_slice_t svc_mp_slice(const msgpack_object *o)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_STR)
        return (xws_slice_t){"", 0};
    return (xws_slice_t){o->via.str.ptr, o->via.str.size};
}

void svc_mp_cstr(msgpack_packer *pk, const char *s)
{
    if (s == NULL)
        s = "";
    svc_mp_strn(pk, s, strlen(s));
}

void svc_mp_strn(msgpack_packer *pk, const char *p, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, p, len);
}

int svc_mp_unpack(msgpack_unpacked *u, const char *data, size_t len)
{
    msgpack_unpacked_init(u);
    size_t off = 0;
    if (data == NULL || len == 0)
        return -1;
    if (msgpack_unpack_next(u, data, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len)
        return -1;
    return 0;
}

void svc_mp_test(void)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    msgpack_pack_map(&pk, 2);
    svc_mp_key(&pk, "a");
    svc_mp_cstr(&pk, "x");
    svc_mp_key(&pk, "bb");
    msgpack_pack_int(&pk, 7);
    msgpack_unpacked u;
    XWS_CHECK(svc_mp_unpack(&u, sb.data, sb.size) == 0);
    XWS_CHECK(svc_mp_str_eq(svc_mp_get(&u.data, "a"), "x"));
    XWS_CHECK(svc_mp_get(&u.data, "bb")->via.u64 == 7);
    XWS_CHECK(svc_mp_get(&u.data, "b") == NULL);
    XWS_CHECK(svc_mp_slice(svc_mp_get(&u.data, "bb")).len == 0);
    msgpack_unpacked_destroy(&u);
    XWS_CHECK(svc_mp_unpack(&u, sb.data, sb.size - 1) == -1); /* truncated */
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    XWS_CHECK(svc_mp_unpack(&u, sb.data, sb.size) == -1); /* trailing bytes */
    msgpack_unpacked_destroy(&u);
    XWS_CHECK(svc_mp_unpack(&u, "", 0) == -1);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}
