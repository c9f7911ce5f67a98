-- prelude.lua - shared by the function library of every service (prepended at build time).
--
-- Conventions of a write function (see svc_ctx.h, svc_write):
--   KEYS[1] = the write-id key (<prefix>wid:<rid>), ARGV[1] = "<ttl in seconds>:<fingerprint of
--   the request>" (hex, may be empty); the function's own keys and arguments follow. It returns an outcome array:
--     {200} / {204} / {200, <msgpack body>}        success
--     {status, code, field, message}               an error answer (PROTOCOL.md section 9)
--     {0, reason}                                  conflict: the caller re-reads and retries
--   xws_write() returns the outcome stored under the write id when the same request was already
--   applied (a retried write after a worker died), else runs the body and stores its outcome,
--   in the same atomic call. Conflicts are not stored. A ttl of 0 stores the outcome without
--   expiry, and only a success (bootstrap writes: a refused item is tried again at the next
--   start). A returned stored outcome has its status raised by 1000, so that the worker can tell
--   the caller that the reply is a replay (svc_outcome_reply takes it off). The outcome is stored
--   with the request's fingerprint: the same write id with another request (another act, params
--   or body) is refused with 400 bad_envelope instead of replaying an unrelated outcome.

-- Every function of a library is registered with the library's version suffix: XWS_FN_SUFFIX
-- ("_v0_9_0"), defined by the loader in front of the library (svc_redis_load), which also names
-- the library after the version. Workers of two versions therefore run side by side on one Redis
-- during a rolling upgrade, each calling its own code (svc_redis_fcall adds the same suffix).
-- (Only the redis API is reachable while a library loads: no type(), hence two helpers.)
local function xws_register_function(name, callback)
    redis.register_function(name .. XWS_FN_SUFFIX, callback)
end

-- the same for a read-only function (flag no-writes: FCALL_RO, runs on replicas too)
local function xws_register_function_ro(name, callback)
    redis.register_function {function_name = name .. XWS_FN_SUFFIX, callback = callback, flags = {'no-writes'}}
end

local function xws_write(keys, args, body)
    local ttl, fp = string.match(args[1], '^(%d+):(%x*)$')
    if ttl == nil then
        ttl, fp = args[1], ''
    end
    ttl = tonumber(ttl) or 0
    local prev = redis.call('GET', keys[1])
    if prev then
        local rec = cmsgpack.unpack(prev)
        local out = rec
        if type(rec[1]) == 'string' then -- {fingerprint, outcome}
            if fp ~= '' and rec[1] ~= '' and rec[1] ~= fp then
                return {400, 'bad_envelope', '', 'this request id was already used for another request'}
            end
            out = rec[2]
        end
        out[1] = out[1] + 1000
        return out
    end
    local out = body(keys, args)
    if out[1] ~= 0 then
        if ttl > 0 then
            redis.call('SET', keys[1], cmsgpack.pack({fp, out}), 'EX', ttl)
        elseif out[1] < 400 then
            redis.call('SET', keys[1], cmsgpack.pack({fp, out}))
        end
    end
    return out
end

-- an error outcome
local function xws_fail(status, code, field, message)
    return {status, code, field, message}
end

-- bumps the version counter of a resource (every write does, for ETags)
local function xws_bump(verkey)
    return redis.call('INCR', verkey)
end

-- ---- references --------------------------------------------------------------------------------
-- A reference count is a hash field (target id → number of objects referring to it): a delete of
-- the target is refused while it is > 0.

-- adds delta to the count of field in hash key (the field is removed at 0); returns the new count
local function xws_refs_add(key, field, delta)
    local n = redis.call('HINCRBY', key, field, delta)
    if n <= 0 then
        redis.call('HDEL', key, field)
    end
    return n
end

-- the count of field in hash key
local function xws_refs_count(key, field)
    return tonumber(redis.call('HGET', key, field) or '0') or 0
end

-- ---- records and their indexes (svc_index.h) ---------------------------------------------------
-- KEYS after the write id: seq, data, ver, inrefs, then two per index: (key, refs) — key is the
-- index hash (unique: value -> id; lookup: value -> "id,id,..."), or for a reference the target's
-- data hash and refs its reference counts. Index entries come from the worker, which computed
-- them from the records with the resource's declaration: {{{value, path}, ...} per index}.

local function xws_ix_fmt(template, value)
    return (string.gsub(template or '%s', '%%s', function()
        return value
    end))
end

local function xws_ix_set(list)
    local s = {}
    for _, e in ipairs(list or {}) do
        s[e[1]] = true
    end
    return s
end

local function xws_ix_keys(k, i)
    return k[4 + 2 * i], k[5 + 2 * i]
end

-- nil, or the error outcome of the first new index entry that is refused (a taken unique value,
-- a reference to nothing). kinds: one letter per index, u(nique), l(ookup), r(eference)
local function xws_records_check(k, id, old, new, kinds, msgs)
    for i = 1, #kinds do
        local kind = string.sub(kinds, i, i)
        local key = xws_ix_keys(k, i)
        local was = xws_ix_set(old[i])
        for _, e in ipairs(new[i] or {}) do
            local v, path = e[1], e[2]
            if not was[v] then
                if kind == 'u' then
                    local owner = redis.call('HGET', key, v)
                    if owner and owner ~= id then
                        return xws_fail(400, 'already_exists', path, xws_ix_fmt(msgs[i], v))
                    end
                elseif kind == 'r' and redis.call('HEXISTS', key, v) == 0 then
                    return xws_fail(400, 'unknown_reference', path, xws_ix_fmt(msgs[i], v))
                end
            end
        end
    end
    return nil
end

local function xws_lookup_edit(key, value, id, add)
    local ids, out, found = redis.call('HGET', key, value), {}, false
    for x in string.gmatch(ids or '', '[^,]+') do
        if x == id then
            found = true
        end
        if x ~= id or add then
            out[#out + 1] = x
        end
    end
    if add and not found then
        out[#out + 1] = id
    end
    if #out == 0 then
        redis.call('HDEL', key, value)
    else
        redis.call('HSET', key, value, table.concat(out, ','))
    end
end

-- moves the index entries of record id from old to new (both as sent by the worker)
local function xws_records_apply(k, id, old, new, kinds)
    for i = 1, #kinds do
        local kind = string.sub(kinds, i, i)
        local key, refs = xws_ix_keys(k, i)
        local was, now = xws_ix_set(old[i]), xws_ix_set(new[i])
        for v in pairs(was) do
            if not now[v] then
                if kind == 'u' then
                    if redis.call('HGET', key, v) == id then
                        redis.call('HDEL', key, v)
                    end
                elseif kind == 'l' then
                    xws_lookup_edit(key, v, id, false)
                else
                    xws_refs_add(refs, v, -1)
                end
            end
        end
        for v in pairs(now) do
            if not was[v] then
                if kind == 'u' then
                    redis.call('HSET', key, v, id)
                elseif kind == 'l' then
                    xws_lookup_edit(key, v, id, true)
                else
                    xws_refs_add(refs, v, 1)
                end
            end
        end
    end
end

local function xws_unpack_or(s, default)
    if s == nil or s == '' then
        return default
    end
    return cmsgpack.unpack(s)
end

-- put: ARGV after the ttl: id ('' to add: a new id from seq), record read ('' to add), new
-- record, old entries ('' to add), new entries, kinds, messages (msgpack array), resource,
-- options ('id': the answer's body is the id as a string)
local function xws_records_put(k, a)
    local data, ver = k[3], k[4]
    local id, old, rec = a[2], a[3], a[4]
    local olde, newe = xws_unpack_or(a[5], {}), xws_unpack_or(a[6], {})
    local kinds, msgs, what = a[7], xws_unpack_or(a[8], {}), a[9]
    if id ~= '' then
        local cur = redis.call('HGET', data, id)
        if not cur then
            return xws_fail(404, 'not_found', 'id', 'no ' .. what .. ' has id ' .. id)
        end
        if cur ~= old then
            return {0, 'changed'}
        end
    end
    local err = xws_records_check(k, id, olde, newe, kinds, msgs)
    if err then
        return err
    end
    if id == '' then
        id = string.format('%d', redis.call('INCR', k[2]))
    end
    redis.call('HSET', data, id, rec)
    xws_records_apply(k, id, olde, newe, kinds)
    xws_bump(ver)
    if a[10] == 'id' then
        return {200, cmsgpack.pack(id)}
    end
    return {200}
end

-- delete: ARGV after the ttl: id, record read, its entries, kinds, resource. 405 while inrefs
-- counts a reference to it.
local function xws_records_del(k, a)
    local data, ver, inrefs = k[3], k[4], k[5]
    local id, old, olde, kinds, what = a[2], a[3], xws_unpack_or(a[4], {}), a[5], a[6]
    local cur = redis.call('HGET', data, id)
    if not cur then
        return xws_fail(404, 'not_found', 'id', 'no ' .. what .. ' has id ' .. id)
    end
    if cur ~= old then
        return {0, 'changed'}
    end
    local n = xws_refs_count(inrefs, id)
    if n > 0 then
        return xws_fail(405, 'in_use', 'id', what .. ' ' .. id .. ' is still used by ' .. n .. ' other object(s)')
    end
    xws_records_apply(k, id, olde, {}, kinds)
    redis.call('HDEL', data, id)
    xws_bump(ver)
    return {200}
end

-- delete all: ARGV after the ttl: {{id, record read, entries}, ...}, kinds. Deletes every
-- record nothing refers to; {204} when there was none at all.
local function xws_records_delall(k, a)
    local data, ver, inrefs = k[3], k[4], k[5]
    if redis.call('HLEN', data) == 0 then
        return {204}
    end
    local list, kinds = xws_unpack_or(a[2], {}), a[3]
    if #list ~= redis.call('HLEN', data) then
        return {0, 'changed'}
    end
    for _, e in ipairs(list) do
        if redis.call('HGET', data, e[1]) ~= e[2] then
            return {0, 'changed'}
        end
    end
    local deleted = 0
    for _, e in ipairs(list) do
        if xws_refs_count(inrefs, e[1]) <= 0 then
            xws_records_apply(k, e[1], e[3] or {}, {}, kinds)
            redis.call('HDEL', data, e[1])
            deleted = deleted + 1
        end
    end
    if deleted > 0 then
        xws_bump(ver)
    end
    return {200}
end

-- registers <service>_records_put, _del and _delall (svc_records_* call them)
local function xws_register_records(service)
    xws_register_function(service .. '_records_put', function(keys, args)
        return xws_write(keys, args, xws_records_put)
    end)
    xws_register_function(service .. '_records_del', function(keys, args)
        return xws_write(keys, args, xws_records_del)
    end)
    xws_register_function(service .. '_records_delall', function(keys, args)
        return xws_write(keys, args, xws_records_delall)
    end)
end

-- ---- numbers in contexts (svc_number.h) --------------------------------------------------------
-- <p>context:numbers:<ctx>  hash number -> "<kind>:<owner>": every number taken in the context,
--                           by any kind of numbered object (line, group, queue, meetme, incall)
-- <p>context:numidx:<ctx>   sorted set of the all-digit numbers of that hash, score = the number:
--                           free-number search walks ranges with ZRANGEBYSCORE, skipping them
-- <p>context:data           hash name -> context record; its ranges are read with
--                           xws_context_ranges only (positions 7-11: user, group, queue, meetme,
--                           incall; a range {numberbeg, numberend[, didlength]})

local XWS_NUMBER_TYPES = {user = 7, group = 8, queue = 9, meetme = 10, incall = 11}

-- the ranges of type kind in context name ({} when none), or nil when the context does not exist
local function xws_context_ranges(ctxdata, name, kind)
    local rec = redis.call('HGET', ctxdata, name)
    if not rec then
        return nil
    end
    local ok, r = pcall(cmsgpack.unpack, rec)
    if not ok or type(r) ~= 'table' then
        return {}
    end
    return r[XWS_NUMBER_TYPES[kind]] or {}
end

-- 1 when num lies in range r: the bounds' number of digits and beg <= num <= end (an incall
-- entry with empty bounds holds every number)
local function xws_in_range(num, r)
    local b, e = r[1], r[2]
    if b == nil or b == '' then
        return true
    end
    if e == nil or e == '' then
        return num == b
    end
    return #num == #b and num >= b and num <= e
end

local function xws_in_ranges(num, ranges)
    for _, r in ipairs(ranges) do
        if xws_in_range(num, r) then
            return true
        end
    end
    return false
end

-- nil, or the error outcome that refuses taking num for "<kind>:<owner>" in context name:
-- unknown context, number taken by another object, outside the kind's ranges (when it has any)
local function xws_number_check(numbers, ctxdata, name, num, kind, owner, field)
    local ranges = xws_context_ranges(ctxdata, name, kind)
    if ranges == nil then
        return xws_fail(400, 'unknown_reference', field, 'no context is named ' .. name)
    end
    local cur = redis.call('HGET', numbers, num)
    if cur and cur ~= kind .. ':' .. owner then
        return xws_fail(400, 'number_taken', field, 'number ' .. num .. ' is already used in context ' .. name .. ' (' .. cur .. ')')
    end
    if #ranges > 0 and not xws_in_ranges(num, ranges) then
        return xws_fail(400, 'out_of_range', field, 'number ' .. num .. ' is outside the ' .. kind .. ' ranges of context ' .. name)
    end
    return nil
end

-- takes num for "<kind>:<owner>" (after xws_number_check)
local function xws_number_take(numbers, numidx, num, kind, owner)
    redis.call('HSET', numbers, num, kind .. ':' .. owner)
    if string.match(num, '^%d+$') then
        redis.call('ZADD', numidx, tonumber(num), num)
    end
end

-- releases num when "<kind>:<owner>" holds it
local function xws_number_release(numbers, numidx, num, kind, owner)
    if redis.call('HGET', numbers, num) == kind .. ':' .. owner then
        redis.call('HDEL', numbers, num)
        redis.call('ZREM', numidx, num)
    end
end

-- the lowest number of kind in use in the context that lies outside ranges: num, owner; or nil
local function xws_numbers_outside(numbers, kind, ranges)
    local used, worst, owner = redis.call('HGETALL', numbers), nil, nil
    for i = 1, #used, 2 do
        local num, o = used[i], used[i + 1]
        if string.match(o, '^([^:]*)') == kind and not xws_in_ranges(num, ranges) then
            if worst == nil or #num < #worst or (#num == #worst and num < worst) then
                worst, owner = num, o
            end
        end
    end
    return worst, owner
end
