-- groups.lua - the Redis functions of the groups and queues resources (spec §5.5, §5.6), in the
-- xws_ipbx_users library after the prelude, refs.lua and users.lua. One set of functions serves
-- both kinds: ARGV[2] says 'group' or 'queue', the KEYS name the kind's own hashes.
--
-- A group (queue) is a msgpack map written by the worker (svc_record_pack_stored); the worker also
-- sends the index entries of the old and the new record (svc_index_pack_entries): index 1 = name
-- (unique), index 2 = context (a reference to a context: counted in context:refs).
--
-- KEYS of every write, after the write id KEYS[1]; the svc_index layout comes first, so that
-- xws_records_check / xws_records_apply maintain the indexes:
--   2 group:seq      3 group:data      4 ver:groups      5 group:data (no inrefs: nothing refuses a delete)
--   6 group:name     7 group:name                        (index 1: unique name)
--   8 context:data   9 context:refs                      (index 2: reference to the context)
--  10, 11 context:numbers:<ctx>, context:numidx:<ctx> of the old context (add: the new one)
--  12, 13 the same for the new context
--  14..27 (delete only) the cascade keys of refs.lua, in its order
-- (queue:seq, queue:data, ver:queues, queue:name for a queue.)
--
-- A number is held in its context as kind 'group' ('queue'), owner 'group/<id>' ('queue/<id>'),
-- and must lie inside one of the context's ranges of that kind.

local IPBX_GROUPS_KINDS = {group = true, queue = true}

-- nil, or the error outcome refusing number num for kind/id in context name (after the context
-- was found to exist): a context without ranges of the kind holds no number of that kind
local function ipbx_groups_number_check(numbers, ctxdata, name, num, kind, id)
    local ranges = xws_context_ranges(ctxdata, name, kind)
    if ranges ~= nil and #ranges == 0 then
        return xws_fail(400, 'out_of_range', 'number', 'context ' .. name .. ' has no ' .. kind .. ' range')
    end
    return xws_number_check(numbers, ctxdata, name, num, kind, kind .. '/' .. id, 'number')
end

-- put (add and edit). ARGV after the ttl: kind, id ('' to add), record read ('' to add), new
-- record, old entries ('' to add), new entries, kinds, messages, old context, old number, new
-- context, new number ('' = none)
local function ipbx_groups_put(k, a)
    local kind, id, old, rec = a[2], a[3], a[4], a[5]
    local olde, newe = xws_unpack_or(a[6], {}), xws_unpack_or(a[7], {})
    local kinds, msgs = a[8], xws_unpack_or(a[9], {})
    local octx, onum, nctx, nnum = a[10], a[11], a[12], a[13]
    if not IPBX_GROUPS_KINDS[kind] then
        return xws_fail(500, 'internal_error', '', 'unknown kind ' .. tostring(kind))
    end
    local adding = id == ''
    if adding then
        id = string.format('%d', (tonumber(redis.call('GET', k[2]) or '0') or 0) + 1)
    else
        local cur = redis.call('HGET', k[3], id)
        if not cur then
            return xws_fail(404, 'not_found', 'id', 'no ' .. kind .. ' has id ' .. id)
        end
        if cur ~= old then
            return {0, 'changed'}
        end
    end
    -- every check before the first write: name and context, then the number
    local err = xws_records_check(k, id, olde, newe, kinds, msgs)
    if err then
        return err
    end
    local moved = adding or nnum ~= onum or nctx ~= octx
    if moved and nnum ~= '' then
        err = ipbx_groups_number_check(k[12], k[8], nctx, nnum, kind, id)
        if err then
            return err
        end
    end
    -- writes
    if adding then
        redis.call('INCR', k[2])
    end
    redis.call('HSET', k[3], id, rec)
    xws_records_apply(k, id, olde, newe, kinds)
    if moved then
        if not adding and onum ~= '' then
            xws_number_release(k[10], k[11], onum, kind, kind .. '/' .. id)
        end
        if nnum ~= '' then
            xws_number_take(k[12], k[13], nnum, kind, kind .. '/' .. id)
        end
    end
    xws_bump(k[4])
    return {200}
end

-- delete. ARGV after the ttl: kind, id, record read, its entries, kinds, its context, its number.
-- The record, its name, its context reference, its number, then every reference to it (refs.lua).
local function ipbx_groups_del(k, a)
    local kind, id, old, olde, kinds, ctx, num = a[2], a[3], a[4], xws_unpack_or(a[5], {}), a[6], a[7], a[8]
    if not IPBX_GROUPS_KINDS[kind] then
        return xws_fail(500, 'internal_error', '', 'unknown kind ' .. tostring(kind))
    end
    local cur = redis.call('HGET', k[3], id)
    if not cur then
        return xws_fail(404, 'not_found', 'id', 'no ' .. kind .. ' has id ' .. id)
    end
    if cur ~= old then
        return {0, 'changed'}
    end
    xws_records_apply(k, id, olde, {}, kinds)
    redis.call('HDEL', k[3], id)
    if num ~= '' then
        xws_number_release(k[10], k[11], num, kind, kind .. '/' .. id)
    end
    ipbx_refs_forget(ipbx_refs_keys(k, 14), kind, id)
    xws_bump(k[4])
    return {200}
end

-- read (view), in one atomic step. KEYS: group:data, group:members (or the queue's); ARGV[1]: an
-- id. Returns {record or '', members "uid,uid,..." or ''}.
local function ipbx_groups_read(k, a)
    return {redis.call('HGET', k[1], a[1]) or '', redis.call('HGET', k[2], a[1]) or ''}
end

xws_register_function('ipbx_groups_put', function(keys, args)
    return xws_write(keys, args, ipbx_groups_put)
end)
xws_register_function('ipbx_groups_del', function(keys, args)
    return xws_write(keys, args, ipbx_groups_del)
end)
xws_register_function_ro('ipbx_groups_read', ipbx_groups_read)
