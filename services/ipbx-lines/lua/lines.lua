-- lines.lua - the Redis functions of the ipbx-lines service (library xws_ipbx_lines), see
-- README.md beside the lua/ folder. The prelude (records, indexes, numbers) comes first.
--
-- A line is a msgpack map {linefeatures = {...}, protocol = {...}} written by the worker
-- (svc_record_pack_stored); the worker also sends the index entries of the old and the new
-- record (svc_index_pack_entries): index 1 = protocol.name (unique), index 2 = protocol.context
-- (a reference to a context: counted in context:refs).
--
-- KEYS of every write, after the write id KEYS[1]; the svc_index layout comes first, so that
-- xws_records_check / xws_records_apply maintain the indexes:
--   2 line:seq        3 line:data        4 ver:lines        5 line:refs
--   6 line:name       7 line:name                       (index 1: unique name, folded)
--   8 context:data    9 context:refs                    (index 2: reference to the context)
--  10 line:owner     11 line:byuser     12 line:device    13 line:bydevice   14 device:data
--  15 ver:users      16 ver:devices
--  17, 18 context:numbers:<ctx>, context:numidx:<ctx> of the line's old context (add: the new one)
--  19, 20 the same for its new context                  (delete all: one pair per context)
--
-- A line's number is held in its context as type 'user', owner 'line/<id>' (prelude helpers).

local function lines_owner(id)
    return 'line/' .. id
end

-- detaches line id from its user and its device (the shared keys of README.md)
local function lines_detach(k, id)
    local uid = redis.call('HGET', k[10], id)
    if uid then
        redis.call('HDEL', k[10], id)
        xws_lookup_edit(k[11], uid, id, false)
        xws_bump(k[15])
    end
    local dev = redis.call('HGET', k[12], id)
    if dev then
        redis.call('HDEL', k[12], id)
        xws_lookup_edit(k[13], dev, id, false)
        xws_bump(k[16])
    end
end

-- removes line id: record, index entries, number, attachments
local function lines_remove(k, id, entries, kinds, num, numbers, numidx)
    xws_records_apply(k, id, entries, {}, kinds)
    redis.call('HDEL', k[3], id)
    if num ~= '' then
        xws_number_release(numbers, numidx, num, 'user', lines_owner(id))
    end
    lines_detach(k, id)
end

-- the device slot (linefeatures.num) of a stored line, or nil
local function lines_slot(blob)
    local ok, l = pcall(cmsgpack.unpack, blob or '')
    if ok and type(l) == 'table' and type(l.linefeatures) == 'table' then
        return l.linefeatures.num
    end
    return nil
end

-- nil, or the error outcome when another line of device dev holds the slot of the new record rec
-- (not checked again when neither the device nor the slot changes)
local function lines_slot_check(k, id, rec, old, dev, odev)
    local num = lines_slot(rec)
    if num == nil or (dev == odev and num == lines_slot(old)) then
        return nil
    end
    for x in string.gmatch(redis.call('HGET', k[13], dev) or '', '[^,]+') do
        if x ~= id and lines_slot(redis.call('HGET', k[3], x)) == num then
            return xws_fail(400, 'already_exists', 'linefeatures.num',
                'slot ' .. num .. ' of device ' .. dev .. ' is taken by line ' .. x)
        end
    end
    return nil
end

-- put (add and edit). ARGV after the ttl: id ('' to add), record read ('' to add), new record,
-- old entries ('' to add), new entries, kinds, messages, old context, old number, new context,
-- new number, old device, new device ('' = none)
local function lines_put(k, a)
    local data = k[3]
    local id, old, rec = a[2], a[3], a[4]
    local olde, newe = xws_unpack_or(a[5], {}), xws_unpack_or(a[6], {})
    local kinds, msgs = a[7], xws_unpack_or(a[8], {})
    local octx, onum, nctx, nnum, odev, ndev = a[9], a[10], a[11], a[12], a[13], a[14]
    local adding = id == ''
    if adding then
        id = string.format('%d', (tonumber(redis.call('GET', k[2]) or '0') or 0) + 1)
    else
        local cur = redis.call('HGET', data, id)
        if not cur then
            return xws_fail(404, 'not_found', 'id', 'no line has id ' .. id)
        end
        if cur ~= old or (redis.call('HGET', k[12], id) or '') ~= odev then
            return {0, 'changed'}
        end
    end
    -- every check before the first write; the number first (an sccp line is named by its number)
    local moved = adding or nnum ~= onum or nctx ~= octx
    local err = nil
    if moved and nnum ~= '' and redis.call('HEXISTS', k[8], nctx) == 1 then
        err = xws_number_check(k[19], k[8], nctx, nnum, 'user', lines_owner(id), 'linefeatures.number')
    end
    err = err or xws_records_check(k, id, olde, newe, kinds, msgs)
    if err then
        return err
    end
    if ndev ~= '' and ndev ~= odev and redis.call('HEXISTS', k[14], ndev) == 0 then
        return xws_fail(400, 'unknown_reference', 'linefeatures.device', 'no device has id ' .. ndev)
    end
    if ndev ~= '' then
        err = lines_slot_check(k, id, rec, old, ndev, odev)
        if err then
            return err
        end
    end
    -- writes
    if adding then
        redis.call('INCR', k[2])
    end
    redis.call('HSET', data, id, rec)
    xws_records_apply(k, id, olde, newe, kinds)
    if moved then
        if not adding and onum ~= '' then
            xws_number_release(k[17], k[18], onum, 'user', lines_owner(id))
        end
        if nnum ~= '' then
            xws_number_take(k[19], k[20], nnum, 'user', lines_owner(id))
        end
    end
    if ndev ~= odev then
        if odev ~= '' then
            xws_lookup_edit(k[13], odev, id, false)
        end
        if ndev ~= '' then
            redis.call('HSET', k[12], id, ndev)
            xws_lookup_edit(k[13], ndev, id, true)
        else
            redis.call('HDEL', k[12], id)
        end
        xws_bump(k[16])
    end
    xws_bump(k[4])
    if redis.call('HEXISTS', k[10], id) == 1 then
        xws_bump(k[15]) -- the owner's view shows its lines
    end
    return {200}
end

-- delete. ARGV after the ttl: id, record read, its entries, kinds, its number
local function lines_del(k, a)
    local id, old = a[2], a[3]
    local cur = redis.call('HGET', k[3], id)
    if not cur then
        return xws_fail(404, 'not_found', 'id', 'no line has id ' .. id)
    end
    if cur ~= old then
        return {0, 'changed'}
    end
    lines_remove(k, id, xws_unpack_or(a[4], {}), a[5], a[6], k[17], k[18])
    xws_bump(k[4])
    return {200}
end

-- delete all. ARGV after the ttl: {{id, record read, entries, context index (0-based), number}, ...},
-- kinds. KEYS from 17: the number keys of context i at 17 + 2i, 18 + 2i.
local function lines_delall(k, a)
    local n = redis.call('HLEN', k[3])
    if n == 0 then
        return {204}
    end
    local list, kinds = xws_unpack_or(a[2], {}), a[3]
    if #list ~= n then
        return {0, 'changed'}
    end
    for _, e in ipairs(list) do
        if redis.call('HGET', k[3], e[1]) ~= e[2] then
            return {0, 'changed'}
        end
    end
    for _, e in ipairs(list) do
        local i = tonumber(e[4]) or 0
        lines_remove(k, e[1], e[3] or {}, kinds, e[5] or '', k[17 + 2 * i], k[18 + 2 * i])
    end
    xws_bump(k[4])
    return {200}
end

-- read of one line (view, and the record an edit or delete starts from), in one atomic step.
-- KEYS: line:data, line:owner, line:device, user:identity; ARGV[1]: a line id.
-- Returns {id, record, owner id or '', owner identity or '', device id or ''}, or {} when absent.
-- (list, search and delete all read every line with HGETALL in a MULTI/EXEC from the worker:
-- a Lua function would copy every record through Lua strings and the scripting reply buffers.)
local function lines_read(k, a)
    local id = a[1]
    local r = redis.call('HGET', k[1], id)
    if not r then
        return {}
    end
    local uid = redis.call('HGET', k[2], id) or ''
    local ident = ''
    if uid ~= '' then
        ident = redis.call('HGET', k[4], uid) or ''
    end
    return {id, r, uid, ident, redis.call('HGET', k[3], id) or ''}
end

xws_register_function('ipbx_lines_put', function(keys, args)
    return xws_write(keys, args, lines_put)
end)
xws_register_function('ipbx_lines_del', function(keys, args)
    return xws_write(keys, args, lines_del)
end)
xws_register_function('ipbx_lines_delall', function(keys, args)
    return xws_write(keys, args, lines_delall)
end)
xws_register_function_ro('ipbx_lines_read', lines_read)
