-- devices.lua - the Redis functions of the devices service (library xws_devices), see README.md
-- beside the lua/ folder. The prelude (records and their indexes) comes first.
--
-- A device is a msgpack map written by the worker (svc_record_pack_stored); the worker also sends
-- the index entries of the old and the new record (svc_index_pack_entries): index 1 = mac
-- (unique), index 2 = ip (exact lookup), index 3 = deviceid (unique).
--
-- KEYS of every write, after the write id KEYS[1]; the svc_index layout, so that the prelude's
-- xws_records_check / xws_records_apply maintain the indexes:
--   2 device:seq       3 device:data      4 ver:devices      5 device:refs
--   6, 7 device:mac    8, 9 device:ip     10, 11 device:deviceid
-- devices_del also takes the line attachments of ipbx-lines (its README, "Attachments"):
--  12 line:device     13 line:bydevice   14 ver:lines

-- add and edit: the prelude's put (every check before the first write; compare-and-set for an
-- edit); its answer is the id as a string, which the worker replaces by the object (add) or
-- drops (edit)
xws_register_function('devices_records_put', function(keys, args)
    return xws_write(keys, args, xws_records_put)
end)

-- delete. ARGV after the ttl: id, record read, its entries, kinds, resource. The lines attached
-- to the device lose it in the same call (line:device, line:bydevice; ver:lines bumped).
local function devices_del(k, a)
    local id, old = a[2], a[3]
    local cur = redis.call('HGET', k[3], id)
    if not cur then
        return xws_fail(404, 'not_found', 'id', 'no device has id ' .. id)
    end
    if cur ~= old then
        return {0, 'changed'}
    end
    xws_records_apply(k, id, xws_unpack_or(a[4], {}), {}, a[5])
    redis.call('HDEL', k[3], id)
    local lines = redis.call('HGET', k[13], id)
    if lines then
        for line in string.gmatch(lines, '[^,]+') do
            if redis.call('HGET', k[12], line) == id then
                redis.call('HDEL', k[12], line)
            end
        end
        redis.call('HDEL', k[13], id)
        xws_bump(k[14])
    end
    xws_bump(k[4])
    return {200}
end

xws_register_function('devices_del', function(keys, args)
    return xws_write(keys, args, devices_del)
end)

-- read one device with its lines, in one atomic step (view, and the record an edit or a delete
-- starts from). KEYS: device:data, device:deviceid, line:bydevice, line:data. ARGV: a numeric id,
-- or '' and a deviceid. Returns {} when there is no such device, else {id, record, then per
-- attached line: line id, num, number, context, protocol} (the line's fields read from its
-- stored form, ipbx-lines README: a map {linefeatures = {...}, protocol = {...}}).
local function devices_read(k, a)
    local id = a[1]
    if id == '' then
        id = redis.call('HGET', k[2], a[2] or '')
        if not id then
            return {}
        end
    end
    local rec = redis.call('HGET', k[1], id)
    if not rec then
        return {}
    end
    local out = {id, rec}
    for line in string.gmatch(redis.call('HGET', k[3], id) or '', '[^,]+') do
        local blob = redis.call('HGET', k[4], line)
        if blob then
            local ok, l = pcall(cmsgpack.unpack, blob)
            local lf = ok and type(l) == 'table' and type(l.linefeatures) == 'table' and l.linefeatures or {}
            out[#out + 1] = line
            out[#out + 1] = tostring(lf.num or 0)
            out[#out + 1] = tostring(lf.number or '')
            out[#out + 1] = tostring(lf.context or '')
            out[#out + 1] = tostring(lf.protocol or '')
        end
    end
    return out
end

xws_register_function_ro('devices_read', devices_read)
