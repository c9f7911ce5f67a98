-- pickup.lua - the Redis functions of the `pickup` resource (spec §5.4), in the xws_ipbx_users
-- library after refs.lua and users.lua. Key layout: README.md, "Users, groups, queues and pickups".
--
-- A pickup is a msgpack map {commented, description, name} (pickup.c, pickup_table) in
-- pickup:data under its id, 0-63 (the lowest free one on add). Its rows are a msgpack array of
-- maps {category, memberid, membertype} in pickup:rows; pickup:target keeps, for every
-- "<membertype>:<memberid>" a row names, the pickups naming it ("pid,pid,..."), exact at every
-- write, so that the delete of a user, group or queue (ipbx_refs_forget) drops its rows without a
-- scan.
--
-- KEYS of ipbx_pickup_put, after the write id KEYS[1]:
--   2 pickup:data  3 pickup:name  4 pickup:rows  5 pickup:target  6 ver:pickup
--   7 user:data    8 group:data   9 queue:data   (read: the members must exist)
-- ipbx_pickup_del: KEYS 2-6 only. ipbx_pickup_read (read-only): pickup:data, pickup:rows.

local PICKUP_IDS = 64
local PICKUP_TARGET_KEY = {user = 7, group = 8, queue = 9}

-- the set of "<membertype>:<memberid>" that rows name
local function pickup_targets(rows)
    local out = {}
    for _, row in ipairs(rows) do
        if type(row) == 'table' and type(row.membertype) == 'string' and tonumber(row.memberid) then
            out[row.membertype .. ':' .. string.format('%d', row.memberid)] = true
        end
    end
    return out
end

-- moves pickup id's entries in pickup:target from the rows it had to the rows it gets
local function pickup_retarget(k, id, was, now)
    for t in pairs(was) do
        if not now[t] then
            xws_lookup_edit(k[5], t, id, false)
        end
    end
    for t in pairs(now) do
        if not was[t] then
            xws_lookup_edit(k[5], t, id, true)
        end
    end
end

-- the lowest pickup id not in use, or nil
local function pickup_free_id(k)
    local used = {}
    for _, x in ipairs(redis.call('HKEYS', k[2])) do
        used[x] = true
    end
    for i = 0, PICKUP_IDS - 1 do
        if not used[tostring(i)] then
            return tostring(i)
        end
    end
    return nil
end

-- ARGV after the ttl: id ('' to add), record read ('' to add: compare-and-set on edit), new record,
-- name, rows (msgpack array of the merged rows; '' on edit: the stored rows stay), the error path of
-- each row's memberid (msgpack array, same order)
local function pickup_put(k, a)
    local id, old, blob, name, rows, paths = a[2], a[3], a[4], a[5], a[6], a[7]
    local prev = nil
    if old ~= '' then
        local cur = redis.call('HGET', k[2], id)
        if not cur then
            return xws_fail(404, 'not_found', 'id', 'no pickup has id ' .. id)
        end
        if cur ~= old then
            return {0, 'changed'}
        end
        prev = ipbx_refs_unpack(cur)
    end
    local owner = redis.call('HGET', k[3], name)
    if owner and owner ~= id then
        return xws_fail(400, 'already_exists', 'name', 'a pickup named ' .. name .. ' already exists')
    end
    local newrows = nil
    if rows ~= '' then
        newrows = ipbx_refs_unpack(rows)
        local p = ipbx_refs_unpack(paths)
        for i, row in ipairs(newrows) do
            local key = k[PICKUP_TARGET_KEY[row.membertype] or 0]
            local mid = tonumber(row.memberid) and string.format('%d', row.memberid) or '?'
            if key == nil or redis.call('HEXISTS', key, mid) == 0 then
                return xws_fail(400, 'unknown_reference', p[i] or 'members',
                                'no ' .. tostring(row.membertype) .. ' has id ' .. mid)
            end
        end
    elseif prev == nil then
        newrows, rows = {}, cmsgpack.pack({})
    end
    if prev == nil then
        id = pickup_free_id(k)
        if id == nil then
            return xws_fail(400, 'out_of_range', 'id', 'every pickup id (0-' .. (PICKUP_IDS - 1) .. ') is in use')
        end
    end
    -- every check is done: the writes
    redis.call('HSET', k[2], id, blob)
    if prev ~= nil and type(prev.name) == 'string' and prev.name ~= name and redis.call('HGET', k[3], prev.name) == id then
        redis.call('HDEL', k[3], prev.name)
    end
    redis.call('HSET', k[3], name, id)
    if newrows ~= nil then
        pickup_retarget(k, id, pickup_targets(ipbx_refs_unpack(redis.call('HGET', k[4], id))), pickup_targets(newrows))
        redis.call('HSET', k[4], id, rows)
    end
    xws_bump(k[6])
    return {200}
end

-- ARGV after the ttl: id. Removes the pickup, its name and its rows (and their pickup:target entries).
local function pickup_del(k, a)
    local id = a[2]
    local cur = redis.call('HGET', k[2], id)
    if not cur then
        return xws_fail(404, 'not_found', 'id', 'no pickup has id ' .. id)
    end
    local rec = ipbx_refs_unpack(cur)
    pickup_retarget(k, id, pickup_targets(ipbx_refs_unpack(redis.call('HGET', k[4], id))), {})
    redis.call('HDEL', k[4], id)
    if type(rec.name) == 'string' and redis.call('HGET', k[3], rec.name) == id then
        redis.call('HDEL', k[3], rec.name)
    end
    redis.call('HDEL', k[2], id)
    xws_bump(k[6])
    return {200}
end

-- KEYS pickup:data, pickup:rows; ARGV id -> {record, rows}, each '' when absent
local function pickup_read(k, a)
    return {redis.call('HGET', k[1], a[1]) or '', redis.call('HGET', k[2], a[1]) or ''}
end

xws_register_function('ipbx_pickup_put', function(keys, args)
    return xws_write(keys, args, pickup_put)
end)
xws_register_function('ipbx_pickup_del', function(keys, args)
    return xws_write(keys, args, pickup_del)
end)
xws_register_function_ro('ipbx_pickup_read', pickup_read)
