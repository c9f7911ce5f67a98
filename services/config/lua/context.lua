-- context.lua - Redis functions of the `context` resource (config service).
--
-- A context record (hash context:data, field = name) is a msgpack array:
--   {name, displayname, entity id, contexttype, description, {included names},
--    {user ranges}, {group ranges}, {queue ranges}, {meetme ranges}, {incall ranges}}
-- a range being {numberbeg, numberend} ({numberbeg, numberend, didlength} for incall;
-- numberend "" = a single number; incall {"", "", didlength} = any DID).
--
-- The C handler validates the syntax and sends a "patch" laid out like the record, except that
-- position 3 holds the entity NAME, nil marks every part the request leaves alone (add: only
-- the entity may be nil, meaning the entity with the lowest id), and position 12 holds the
-- request indexes of the included names (for error paths).
--
-- Keys of every write (after the write id key KEYS[1]):
--   KEYS[2] context:data            hash name -> record
--   KEYS[3] entity:name             hash entity name -> entity id (read)
--   KEYS[4] entity:data             hash entity id -> entity record (read: the ids only)
--   KEYS[5] entity:refs             hash entity id -> references (each context counts one)
--   KEYS[6] context:inclrefs        hash context name -> number of contexts including it
--   KEYS[7] context:refs            hash context name -> references by other services (read)
--   KEYS[8] ver:context             version counter
--   KEYS[9] context:numbers:<name>  hash number -> "<type>:<owner>" (read)
-- ARGV[2] the context name, ARGV[3] the patch (add, edit).

local CTX_TYPES = {'user', 'group', 'queue', 'meetme', 'incall'}
local CTX_TYPE_POS = {user = 7, group = 8, queue = 9, meetme = 10, incall = 11}

local function ctx_refs_add(key, field, delta)
    local n = redis.call('HINCRBY', key, field, delta)
    if n <= 0 then
        redis.call('HDEL', key, field)
    end
end

-- the entity id for a patch's entity name (nil: the lowest id), or nil and an error outcome
local function ctx_resolve_entity(keys, ename)
    if ename ~= nil then
        local id = redis.call('HGET', keys[3], ename)
        if not id then
            return nil, {400, 'unknown_reference', 'context.entity', 'no entity is named ' .. ename}
        end
        return tonumber(id), nil
    end
    local best = nil
    for _, id in ipairs(redis.call('HKEYS', keys[4])) do
        local n = tonumber(id)
        if n and (best == nil or n < best) then
            best = n
        end
    end
    if best == nil then
        return nil, {400, 'missing_field', 'context.entity', 'no entity exists: create one first'}
    end
    return best, nil
end

-- an error outcome naming the first included context that does not exist, or nil
local function ctx_check_includes(keys, incl, idx)
    for i, name in ipairs(incl) do
        if redis.call('HEXISTS', keys[2], name) == 0 then
            local field = 'contextinclude[' .. tostring((idx and idx[i]) or (i - 1)) .. ']'
            return {400, 'unknown_reference', field, 'no context is named ' .. name}
        end
    end
    return nil
end

local function ctx_in_range(num, r)
    local b, e = r[1], r[2]
    if b == nil or b == '' then
        return true -- an incall "any DID" entry
    end
    if e == nil or e == '' then
        return num == b
    end
    return #num == #b and num >= b and num <= e
end

-- an error outcome when a number in use would lie outside the new ranges of its type, or nil.
-- Only the types the patch replaces are checked; a type left without ranges allows any number.
local function ctx_check_numbers(keys, patch)
    local used = nil
    for _, t in ipairs(CTX_TYPES) do
        local ranges = patch[CTX_TYPE_POS[t]]
        if ranges ~= nil and #ranges > 0 then
            used = used or redis.call('HGETALL', keys[9])
            local worst = nil
            for i = 1, #used, 2 do
                local num, owner = used[i], used[i + 1]
                if string.match(owner, '^([^:]*)') == t then
                    local ok = false
                    for _, r in ipairs(ranges) do
                        if ctx_in_range(num, r) then
                            ok = true
                            break
                        end
                    end
                    if not ok and (worst == nil or #num < #worst[1] or (#num == #worst[1] and num < worst[1])) then
                        worst = {num, owner}
                    end
                end
            end
            if worst then
                return {400, 'in_use', 'contextnumbers.' .. t,
                        'number ' .. worst[1] .. ' is in use (' .. worst[2] .. ') and lies outside the new ' .. t ..
                            ' ranges'}
            end
        end
    end
    return nil
end

local function ctx_store(keys, rec)
    redis.call('HSET', keys[2], rec[1], cmsgpack.pack(rec))
    redis.call('INCR', keys[8])
end

local function ctx_add(keys, args)
    local name = args[2]
    local patch = cmsgpack.unpack(args[3])
    if redis.call('HEXISTS', keys[2], name) == 1 then
        return {400, 'already_exists', 'context.name', 'a context named ' .. name .. ' already exists'}
    end
    local eid, err = ctx_resolve_entity(keys, patch[3])
    if err then
        return err
    end
    local incl = patch[6] or {}
    err = ctx_check_includes(keys, incl, patch[12])
    if err then
        return err
    end
    local rec = {name, patch[2] or name, eid, patch[4] or 'internal', patch[5] or '', incl, patch[7] or {},
                 patch[8] or {}, patch[9] or {}, patch[10] or {}, patch[11] or {}}
    ctx_store(keys, rec)
    ctx_refs_add(keys[5], string.format('%d', eid), 1)
    for _, n in ipairs(incl) do
        ctx_refs_add(keys[6], n, 1)
    end
    return {200}
end

-- the stored record of context name, or nil and a 404 outcome
local function ctx_load_or_404(keys, name)
    local old = redis.call('HGET', keys[2], name)
    if not old then
        return nil, {404, 'not_found', 'id', 'no context is named ' .. name}
    end
    return cmsgpack.unpack(old), nil
end

local function ctx_edit(keys, args)
    local name = args[2]
    local old, err = ctx_load_or_404(keys, name)
    if err then
        return err
    end
    local patch = cmsgpack.unpack(args[3])
    local eid = old[3]
    if patch[3] ~= nil then
        local err
        eid, err = ctx_resolve_entity(keys, patch[3])
        if err then
            return err
        end
    end
    if patch[6] ~= nil then
        local err = ctx_check_includes(keys, patch[6], patch[12])
        if err then
            return err
        end
    end
    local err = ctx_check_numbers(keys, patch)
    if err then
        return err
    end
    local rec = {name}
    for i = 2, 11 do
        if patch[i] ~= nil then
            rec[i] = patch[i]
        else
            rec[i] = old[i]
        end
    end
    rec[3] = eid
    -- every value a write needs is checked before the first write (a corrupt record fails here)
    local old_eid, new_eid = tonumber(old[3]), tonumber(eid)
    if old_eid == nil or new_eid == nil then
        return {500, 'internal_error', '', 'context ' .. name .. ': corrupt stored record'}
    end
    ctx_store(keys, rec)
    if old_eid ~= new_eid then
        ctx_refs_add(keys[5], string.format('%d', old_eid), -1)
        ctx_refs_add(keys[5], string.format('%d', new_eid), 1)
    end
    if patch[6] ~= nil then
        for _, n in ipairs(old[6] or {}) do
            ctx_refs_add(keys[6], n, -1)
        end
        for _, n in ipairs(patch[6]) do
            ctx_refs_add(keys[6], n, 1)
        end
    end
    return {200}
end

local function ctx_delete(keys, args)
    local name = args[2]
    local old, err = ctx_load_or_404(keys, name)
    if err then
        return err
    end
    local old_eid = tonumber(old[3])
    if old_eid == nil then
        return {500, 'internal_error', '', 'context ' .. name .. ': corrupt stored record'}
    end
    local refs = tonumber(redis.call('HGET', keys[7], name) or '0') or 0
    if refs > 0 then
        return {405, 'in_use', 'id', 'context ' .. name .. ' is used by ' .. refs .. ' line(s), user(s), group(s) or queue(s)'}
    end
    local incl = tonumber(redis.call('HGET', keys[6], name) or '0') or 0
    if incl > 0 then
        return {405, 'in_use', 'id', 'context ' .. name .. ' is included by ' .. incl .. ' other context(s)'}
    end
    local nums = redis.call('HLEN', keys[9])
    if nums > 0 then
        return {405, 'in_use', 'id', 'context ' .. name .. ' still has ' .. nums .. ' number(s) in use'}
    end
    redis.call('HDEL', keys[2], name)
    redis.call('HDEL', keys[6], name)
    ctx_refs_add(keys[5], string.format('%d', old_eid), -1)
    for _, n in ipairs(old[6] or {}) do
        ctx_refs_add(keys[6], n, -1)
    end
    redis.call('INCR', keys[8])
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

redis.register_function('config_context_add', function(keys, args)
    return xws_write(keys, args, ctx_add)
end)
redis.register_function('config_context_edit', function(keys, args)
    return xws_write(keys, args, ctx_edit)
end)
redis.register_function('config_context_delete', function(keys, args)
    return xws_write(keys, args, ctx_delete)
end)
redis.register_function {function_name = 'config_context_read', callback = ctx_read, flags = {'no-writes'}}
