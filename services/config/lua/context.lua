-- context.lua - Redis functions of the `context` resource (config service).
--
-- A context record (hash context:data, field = name) is the positional msgpack array written by
-- the record layer (context.c, context_table):
--   {name, displayname, entity id, contexttype, description, {included names},
--    {user ranges}, {group ranges}, {queue ranges}, {meetme ranges}, {incall ranges}}
-- a range being {numberbeg, numberend} ({numberbeg, numberend, didlength} for incall).
-- Positions 7-11 are read by the prelude's number helpers (xws_context_ranges).
--
-- The worker validates and merges; these functions check what needs the store, with the
-- prelude's building blocks: the included contexts are a reference index (xws_records_check /
-- xws_records_apply, so KEYS[6] and KEYS[7] are that index's keys), the numbers in use are
-- checked with xws_numbers_outside, the counts kept with xws_refs_add.
--
-- KEYS of every write (after the write id KEYS[1]):
--   KEYS[2]  context:data            hash name -> record
--   KEYS[3]  ver:context             version counter
--   KEYS[4]  entity:name             hash entity name -> entity id (read)
--   KEYS[5]  entity:data             hash entity id -> entity record (read: the ids only)
--   KEYS[6]  context:data            the include index: the targets
--   KEYS[7]  context:inclrefs        ... and their counts (context name -> contexts including it)
--   KEYS[8]  entity:refs             hash entity id -> references (each context counts one)
--   KEYS[9]  context:numbers:<name>  hash number -> "<type>:<owner>" (read)
--   KEYS[10] context:refs            hash context name -> references by other services (read)

local CTX_TYPES = {'user', 'group', 'queue', 'meetme', 'incall'}

-- the entity id for name (''/nil: the lowest id), or nil and an error outcome
local function ctx_entity(k, name)
    if name ~= nil and name ~= '' then
        local id = redis.call('HGET', k[4], name)
        if not id then
            return nil, xws_fail(400, 'unknown_reference', 'context.entity', 'no entity is named ' .. name)
        end
        return tonumber(id), nil
    end
    local best = nil
    for _, id in ipairs(redis.call('HKEYS', k[5])) do
        local n = tonumber(id)
        if n and (best == nil or n < best) then
            best = n
        end
    end
    if best == nil then
        return nil, xws_fail(400, 'missing_field', 'context.entity', 'no entity exists: create one first')
    end
    return best, nil
end

-- an error outcome when a number in use would lie outside the new ranges of its type, or nil.
-- Only the types whose ranges change are checked; a type left without ranges allows any number.
local function ctx_check_numbers(k, prev, rec)
    for _, t in ipairs(CTX_TYPES) do
        local pos = XWS_NUMBER_TYPES[t]
        local ranges = rec[pos] or {}
        if #ranges > 0 and cmsgpack.pack(ranges) ~= cmsgpack.pack(prev[pos] or {}) then
            local num, owner = xws_numbers_outside(k[9], t, ranges)
            if num then
                return xws_fail(400, 'in_use', 'contextnumbers.' .. t, 'number ' .. num .. ' is in use (' .. owner ..
                                    ') and lies outside the new ' .. t .. ' ranges')
            end
        end
    end
    return nil
end

-- ARGV after the ttl: name, record read ('' to add), new record, include entries of the record
-- read and of the new one, index kinds, index messages, entity name ('': unchanged; add: the
-- entity with the lowest id)
local function ctx_put(k, a)
    local name, old, blob = a[2], a[3], a[4]
    local olde, newe, kinds, msgs = xws_unpack_or(a[5], {}), xws_unpack_or(a[6], {}), a[7], xws_unpack_or(a[8], {})
    local cur = redis.call('HGET', k[2], name)
    local prev = nil
    if old == '' then
        if cur then
            return xws_fail(400, 'already_exists', 'context.name', 'a context named ' .. name .. ' already exists')
        end
    else
        if not cur then
            return xws_fail(404, 'not_found', 'id', 'no context is named ' .. name)
        end
        if cur ~= old then
            return {0, 'changed'}
        end
        prev = cmsgpack.unpack(cur)
    end
    local rec = cmsgpack.unpack(blob)
    local eid, err
    if prev ~= nil and a[9] == '' then
        eid = tonumber(prev[3])
    else
        eid, err = ctx_entity(k, a[9])
        if err then
            return err
        end
    end
    err = xws_records_check(k, name, olde, newe, kinds, msgs)
    if err then
        return err
    end
    if prev ~= nil then
        err = ctx_check_numbers(k, prev, rec)
        if err then
            return err
        end
    end
    -- every value a write needs is checked before the first write (a corrupt record fails here)
    local old_eid = prev and tonumber(prev[3])
    if eid == nil or (prev ~= nil and old_eid == nil) then
        return xws_fail(500, 'internal_error', '', 'context ' .. name .. ': corrupt stored record')
    end
    rec[3] = eid
    redis.call('HSET', k[2], name, cmsgpack.pack(rec))
    if old_eid ~= eid then
        if old_eid ~= nil then
            xws_refs_add(k[8], string.format('%d', old_eid), -1)
        end
        xws_refs_add(k[8], string.format('%d', eid), 1)
    end
    xws_records_apply(k, name, olde, newe, kinds)
    xws_bump(k[3])
    return {200}
end

-- ARGV after the ttl: name. 405 while other services use the context, other contexts include it
-- or numbers are taken in it.
local function ctx_delete(k, a)
    local name = a[2]
    local cur = redis.call('HGET', k[2], name)
    if not cur then
        return xws_fail(404, 'not_found', 'id', 'no context is named ' .. name)
    end
    local old = cmsgpack.unpack(cur)
    local old_eid = tonumber(old[3])
    if old_eid == nil then
        return xws_fail(500, 'internal_error', '', 'context ' .. name .. ': corrupt stored record')
    end
    local refs = xws_refs_count(k[10], name)
    if refs > 0 then
        return xws_fail(405, 'in_use', 'id', 'context ' .. name .. ' is used by ' .. refs .. ' line(s), user(s), group(s) or queue(s)')
    end
    local incl = xws_refs_count(k[7], name)
    if incl > 0 then
        return xws_fail(405, 'in_use', 'id', 'context ' .. name .. ' is included by ' .. incl .. ' other context(s)')
    end
    local nums = redis.call('HLEN', k[9])
    if nums > 0 then
        return xws_fail(405, 'in_use', 'id', 'context ' .. name .. ' still has ' .. nums .. ' number(s) in use')
    end
    redis.call('HDEL', k[2], name)
    redis.call('HDEL', k[7], name)
    xws_refs_add(k[8], string.format('%d', old_eid), -1)
    for _, n in ipairs(old[6] or {}) do
        xws_refs_add(k[7], n, -1)
    end
    xws_bump(k[3])
    return {200}
end

-- Reads for list/search/view in one atomic step. KEYS[1] context:data, KEYS[2] entity:data;
-- ARGV[1] a context name, or "" for all. Returns {record, entity name, record, entity name, ...}
-- (the entity's current name, "" if it is gone).
local function ctx_read(keys, args)
    local recs
    if args[1] == '' then
        recs = redis.call('HVALS', keys[1])
    else
        local r = redis.call('HGET', keys[1], args[1])
        recs = r and {r} or {}
    end
    local out, names = {}, {}
    for _, r in ipairs(recs) do
        local ename = ''
        local ok, rec = pcall(cmsgpack.unpack, r)
        if ok and type(rec) == 'table' and type(rec[3]) == 'number' then
            local id = string.format('%d', rec[3])
            ename = names[id]
            if ename == nil then
                ename = ''
                local e = redis.call('HGET', keys[2], id)
                if e then
                    local ok2, erec = pcall(cmsgpack.unpack, e)
                    if ok2 and type(erec) == 'table' and type(erec.name) == 'string' then
                        ename = erec.name
                    end
                end
                names[id] = ename
            end
        end
        out[#out + 1] = r
        out[#out + 1] = ename
    end
    return out
end

xws_register_function('config_context_put', function(keys, args)
    return xws_write(keys, args, ctx_put)
end)
xws_register_function('config_context_delete', function(keys, args)
    return xws_write(keys, args, ctx_delete)
end)
xws_register_function_ro('config_context_read', ctx_read)
