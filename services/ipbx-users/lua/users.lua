-- users.lua - the Redis functions of the ipbx-users service (library xws_ipbx_users), see
-- README.md beside the lua/ folder. The prelude (records, indexes, numbers) comes first.
--
-- A user is a msgpack map (its userfeatures, svc_record_pack_stored) in user:data. Its lines are
-- records of the ipbx-lines service (line:data), attached through the shared keys of
-- services/ipbx-lines/README.md: line:owner (line id -> user id), line:byuser (user id ->
-- "id,id,..." in the user's order) and user:identity (user id -> "First Last").
--
-- KEYS of every write, after the write id KEYS[1]:
--   2 user:seq      3 user:data     4 ver:users     5 user:login    6 entity:data   7 entity:refs
--   8 user:identity
--   9 line:seq     10 line:data    11 ver:lines    12 line:refs    13 line:name    14 context:data
--  15 context:refs 16 line:owner   17 line:byuser  18 line:device  19 line:bydevice 20 ver:devices
--  21 user:voicemail  22 voicemail:mailbox  23 voicemail:seq  24 user:extra
--  25-38 the cascade keys of refs.lua (pickup:rows pickup:target ver:pickup user:dialaction
--        dialaction:target user:groups group:members ver:groups user:queues queue:members
--        ver:queues ver:users user:extra funckey:target)
--  39 group:name   40 queue:name   41 group:data   42 queue:data   43 device:data
--  44, 45 context:numbers:<ctx>, context:numidx:<ctx> of context 0; 46, 47 of context 1; ...
--
-- Lines are described by the worker:
--   an old line (one the user has now): {id, record read, index entries, context index, number,
--                      and on put: the record with its callerid following the user's new names, or
--                      '' when it does not change}
--   a row of the new set: {'new', record, index entries, context index, number, row index, device}
--                      or {'attach', id, number given, row index, device given, slot given (0: none)},
--                         and when the row gives the line a new number: + {line read, line
--                         renumbered, index entries before, after, context index, number before}
-- The index entries are those of the ipbx-lines declaration (1: protocol.name unique, folded;
-- 2: protocol.context, a reference to a context), maintained with xws_records_check/_apply over
-- the line keys laid out as the lines library lays them out.

local function users_line_keys(k)
    return {nil, k[9], k[10], k[11], k[12], k[13], k[13], k[14], k[15]}
end

local function users_numkeys(k, ci)
    ci = tonumber(ci) or 0
    return k[44 + 2 * ci], k[45 + 2 * ci]
end

local USERS_REFS_FIRST = 25

-- the data hash of the objects a dialaction of this actiontype names (nil: it names none)
local function users_target_data(k, kind)
    if kind == 'user' then
        return k[3]
    elseif kind == 'group' then
        return k[41]
    elseif kind == 'queue' then
        return k[42]
    end
    return nil
end

-- removes line id entirely: record, index entries, number, owner, device
local function users_line_remove(k, lk, kinds, l)
    local id = l[1]
    xws_records_apply(lk, id, l[3] or {}, {}, kinds)
    redis.call('HDEL', k[10], id)
    if (l[5] or '') ~= '' then
        local numbers, numidx = users_numkeys(k, l[4])
        xws_number_release(numbers, numidx, l[5], 'user', 'line/' .. id)
    end
    redis.call('HDEL', k[16], id)
    local dev = redis.call('HGET', k[18], id)
    if dev then
        redis.call('HDEL', k[18], id)
        xws_lookup_edit(k[19], dev, id, false)
        xws_bump(k[20])
    end
end

-- nil, or {0} when the user's lines are not exactly the old lines as read
local function users_lines_unchanged(k, uid, oldlines)
    local cur = redis.call('HGET', k[17], uid) or ''
    local ids = {}
    for _, l in ipairs(oldlines) do
        ids[#ids + 1] = l[1]
        if redis.call('HGET', k[10], l[1]) ~= l[2] then
            return {0, 'changed'}
        end
    end
    if cur ~= table.concat(ids, ',') then
        return {0, 'changed'}
    end
    return nil
end

-- a msgpack map as a table, or nil
local function users_unpack(blob)
    local ok, t = pcall(cmsgpack.unpack, blob or '')
    if ok and type(t) == 'table' then
        return t
    end
    return nil
end

-- the device slot (linefeatures.num) of a stored line, or nil
local function users_line_slot(blob)
    local l = users_unpack(blob)
    return l and type(l.linefeatures) == 'table' and l.linefeatures.num or nil
end

-- the context of a stored line, or nil
local function users_line_context(blob)
    local l = users_unpack(blob)
    return l and type(l.protocol) == 'table' and l.protocol.context or nil
end

-- removes the voicemail of user uid: record, mailbox index, context reference
local function users_vm_remove(k, uid)
    local vm = users_unpack(redis.call('HGET', k[21], uid))
    if vm then
        local key = (vm.mailbox or '') .. '@' .. (vm.context or '')
        if redis.call('HGET', k[22], key) == uid then
            redis.call('HDEL', k[22], key)
        end
        if (vm.context or '') ~= '' then
            xws_refs_add(k[15], vm.context, -1)
        end
    end
    redis.call('HDEL', k[21], uid)
end

local function users_field(name, idx)
    return 'linefeatures.' .. name .. '[' .. idx .. ']'
end

-- nil, or the error outcome of the first given dialaction whose user, group or queue does not
-- exist. rows: {{event, actiontype, action, actionarg1, actionarg2}, ...}
local function users_dialactions_check(k, rows)
    for _, r in ipairs(rows) do
        local data = users_target_data(k, r[2])
        if data and redis.call('HEXISTS', data, r[4]) == 0 then
            return xws_fail(400, 'unknown_reference', 'dialaction.' .. r[1] .. '.actionarg1',
                'no ' .. r[2] .. ' has id ' .. r[4])
        end
    end
    return nil
end

-- the set of "<kind>:<id>" targets of a user's dialactions (an event map)
local function users_dialaction_targets(events)
    local t = {}
    for _, a in pairs(events) do
        if type(a) == 'table' and (a.actiontype == 'user' or a.actiontype == 'group' or a.actiontype == 'queue') then
            t[a.actiontype .. ':' .. tostring(a.actionarg1)] = true
        end
    end
    return t
end

-- writes user uid's dialactions: mode 'set' (rows are the whole set) or 'merge' (rows replace the
-- events they name), keeping dialaction:target exact
local function users_dialactions_put(r, uid, mode, rows)
    local old = users_unpack(redis.call('HGET', r.user_dialaction, uid)) or {}
    local new = {}
    if mode == 'merge' then
        for e, a in pairs(old) do
            new[e] = a
        end
    end
    for _, x in ipairs(rows) do
        new[x[1]] = {actiontype = x[2], action = x[3], actionarg1 = x[4], actionarg2 = x[5]}
    end
    local was, now = users_dialaction_targets(old), users_dialaction_targets(new)
    for t in pairs(was) do
        if not now[t] then
            xws_lookup_edit(r.dialaction_target, t, uid, false)
        end
    end
    for t in pairs(now) do
        if not was[t] then
            xws_lookup_edit(r.dialaction_target, t, uid, true)
        end
    end
    if next(new) == nil then
        redis.call('HDEL', r.user_dialaction, uid)
    else
        redis.call('HSET', r.user_dialaction, uid, cmsgpack.pack(new))
    end
end

-- nil, or the error outcome of the first function key naming a group or a queue that does not
-- exist (a key on a user is not checked: the document's example names user 41 on a fresh
-- install). rows: {{kind, id, field}, ...}
local function users_funckeys_check(k, rows)
    for _, r in ipairs(rows) do
        if r[1] ~= 'user' and redis.call('HEXISTS', users_target_data(k, r[1]), r[2]) == 0 then
            return xws_fail(400, 'unknown_reference', r[3], 'no ' .. r[1] .. ' has id ' .. r[2])
        end
    end
    return nil
end

-- the set of "<kind>:<id>" targets of function key references {{kind, id, field}, ...}
local function users_funckey_targets(rows)
    local t = {}
    for _, x in ipairs(rows) do
        t[x[1] .. ':' .. x[2]] = true
    end
    return t
end

-- keeps funckey:target exact when user uid's function keys go from the stored ones to rows (every
-- target of rows is listed again: a key stored before the index existed gets its entry)
local function users_funckeys_put(r, uid, rows)
    local was, now = ipbx_refs_funckey_targets(redis.call('HGET', r.user_extra, uid)), users_funckey_targets(rows)
    for t in pairs(was) do
        if not now[t] then
            xws_lookup_edit(r.funckey_target, t, uid, false)
        end
    end
    for t in pairs(now) do
        xws_lookup_edit(r.funckey_target, t, uid, true)
    end
end

-- the memberships of rows {{name, field, chantype, call-limit[, penalty]}, ...} as a map
-- group (queue) id -> options; nil and the error outcome when a name is not a group (queue)
local function users_members_check(namekey, kind, rows)
    local out = {}
    for _, x in ipairs(rows) do
        local id = redis.call('HGET', namekey, x[1])
        if not id then
            return nil, xws_fail(400, 'unknown_reference', x[2], 'no ' .. kind .. ' is named ' .. x[1])
        end
        local o = {chantype = x[3], ['call-limit'] = x[4]}
        if kind == 'queue' then
            o.penalty = x[5]
        end
        out[id] = o
    end
    return out, nil
end

-- replaces user uid's memberships (map id -> options), keeping the members lists exact
local function users_members_put(userkey, memberskey, verkey, uid, new)
    local old = users_unpack(redis.call('HGET', userkey, uid)) or {}
    for id in pairs(old) do
        if new[tostring(id)] == nil then
            xws_lookup_edit(memberskey, tostring(id), uid, false)
        end
    end
    for id in pairs(new) do
        if old[id] == nil then
            xws_lookup_edit(memberskey, id, uid, true)
        end
    end
    if next(new) == nil then
        redis.call('HDEL', userkey, uid)
    else
        redis.call('HSET', userkey, uid, cmsgpack.pack(new))
    end
    xws_bump(verkey)
end

-- put (add and edit). ARGV after the ttl: uid ('' to add), user read ('' to add), new user,
-- old login (folded), new login (folded), old entity id, new entity id, identity, lines mode
-- ('' untouched, 'set' the rows are the complete new set), old lines, new rows, kinds, messages,
-- voicemail ('' untouched), phonefunckey and queueskills (user:extra), voicemail drop ('1': the
-- user's voicemail is removed), dialaction mode ('' untouched, 'merge': the rows replace the
-- events they name, 'set': the rows are the whole set), dialaction rows ({event, actiontype,
-- action, actionarg1, actionarg2} each), groups mode ('' untouched, 'set'), group rows ({name,
-- field, chantype, call-limit} each), queues mode, queue rows ({name, field, chantype,
-- call-limit, penalty} each), function key references ({kind, id, field} each, of the keys
-- after the write), user:extra as read ('' to add: compare-and-set, the cascade of a delete edits it)
local function users_put(k, a)
    local uid, old, rec = a[2], a[3], a[4]
    local ologin, nlogin, oent, nent, ident = a[5], a[6], a[7], a[8], a[9]
    local setlines = a[10] == 'set'
    local oldlines, rows = xws_unpack_or(a[11], {}), xws_unpack_or(a[12], {})
    local kinds, msgs = a[13], xws_unpack_or(a[14], {})
    local lk = users_line_keys(k)
    local adding = uid == ''
    if adding then
        uid = string.format('%d', (tonumber(redis.call('GET', k[2]) or '0') or 0) + 1)
    else
        local cur = redis.call('HGET', k[3], uid)
        if not cur then
            return xws_fail(404, 'not_found', 'id', 'no user has id ' .. uid)
        end
        if cur ~= old then
            return {0, 'changed'}
        end
        local c = users_lines_unchanged(k, uid, oldlines)
        if c then
            return c
        end
        if (redis.call('HGET', k[24], uid) or '') ~= (a[25] or '') then
            return {0, 'changed'}
        end
    end
    -- every check before the first write
    if nent ~= oent and redis.call('HEXISTS', k[6], nent) == 0 then
        return xws_fail(400, 'unknown_reference', 'userfeatures.entityid', 'no entity has id ' .. nent)
    end
    if nlogin ~= '' and nlogin ~= ologin then
        local owner = redis.call('HGET', k[5], nlogin)
        if owner and owner ~= uid then
            return xws_fail(400, 'already_exists', 'userfeatures.loginclient', 'the client login ' .. nlogin .. ' is taken')
        end
    end
    local final, keep, newids, renumbered = {}, {}, {}, {}
    local firstctx = nil
    if setlines then
        local nextline = tonumber(redis.call('GET', k[9]) or '0') or 0
        local numbers_seen, names_seen, attached, slots_seen = {}, {}, {}, {}
        -- the numbers of the lines this edit removes are free for the new lines of the same call
        local kept, freed = {}, {}
        for _, r in ipairs(rows) do
            if r[1] == 'attach' then
                kept[r[2]] = true
            end
        end
        for _, l in ipairs(oldlines) do
            local lctx = users_line_context(l[2])
            if not kept[l[1]] and (l[5] or '') ~= '' and lctx then
                freed[lctx .. '\0' .. l[5]] = 'line/' .. l[1]
            end
        end
        for i, r in ipairs(rows) do
            if r[1] == 'attach' then
                local id, num, idx = r[2], r[3] or '', r[4]
                local blob = redis.call('HGET', k[10], id)
                if not blob then
                    return xws_fail(400, 'unknown_reference', users_field('id', idx), 'no line has id ' .. id)
                end
                local owner = redis.call('HGET', k[16], id)
                if owner and owner ~= uid then
                    return xws_fail(400, 'in_use', users_field('id', idx), 'line ' .. id .. ' belongs to user ' .. owner)
                end
                if attached[id] then
                    return xws_fail(400, 'invalid_value', users_field('id', idx), 'line ' .. id .. ' is given twice')
                end
                local dev, slot = r[5] or '', tonumber(r[6]) or 0
                if dev ~= '' and dev ~= (redis.call('HGET', k[18], id) or '') then
                    return xws_fail(400, 'invalid_value', users_field('device', idx),
                        'line ' .. id .. ' is not on device ' .. dev .. ' (a line is put on a device through the lines resource)')
                end
                if slot ~= 0 and slot ~= tonumber(users_line_slot(blob) or 1) then
                    return xws_fail(400, 'invalid_value', users_field('num', idx),
                        'line ' .. id .. ' is not in slot ' .. slot .. ' of its device (change it through the lines resource)')
                end
                if r[7] then
                    -- a new number for the line: free in its context and in range (taken below)
                    if blob ~= r[7] then
                        return {0, 'changed'}
                    end
                    local lctx = users_line_context(blob) or ''
                    local seen = lctx .. '\0' .. num
                    if numbers_seen[seen] then
                        return xws_fail(400, 'number_taken', users_field('number', idx),
                            'number ' .. num .. ' is given twice in context ' .. lctx)
                    end
                    numbers_seen[seen] = true
                    local err = xws_number_check(users_numkeys(k, r[11]), k[14], lctx, num, 'user', freed[seen] or ('line/' .. id),
                        users_field('number', idx))
                    if err then
                        return err
                    end
                    err = xws_records_check(lk, id, r[9] or {}, r[10] or {}, kinds, msgs)
                    if err then
                        err[3] = users_field('number', idx)
                        return err
                    end
                    renumbered[#renumbered + 1] = r
                end
                attached[id] = true
                firstctx = firstctx or users_line_context(blob)
                final[#final + 1] = id
                keep[id] = true
            else
                local nrec, entries, ci, num, idx = r[2], r[3] or {}, r[4], r[5] or '', r[6]
                nextline = nextline + 1
                local id = string.format('%d', nextline)
                r.id = id
                local ctxname = entries[2] and entries[2][1] and entries[2][1][1] or ''
                if redis.call('HEXISTS', k[14], ctxname) == 0 then
                    return xws_fail(400, 'unknown_reference', users_field('context', idx), 'no context is named ' .. ctxname)
                end
                if num ~= '' then
                    local seen = ctxname .. '\0' .. num
                    if numbers_seen[seen] then
                        return xws_fail(400, 'number_taken', users_field('number', idx),
                            'number ' .. num .. ' is given twice in context ' .. ctxname)
                    end
                    numbers_seen[seen] = true
                    local numbers = users_numkeys(k, ci)
                    local err = xws_number_check(numbers, k[14], ctxname, num, 'user', freed[seen] or ('line/' .. id),
                        users_field('number', idx))
                    if err then
                        return err
                    end
                end
                local name = entries[1] and entries[1][1] and entries[1][1][1]
                if name then
                    if names_seen[name] then
                        return xws_fail(400, 'already_exists', users_field('name', idx), 'a line named ' .. name .. ' is given twice')
                    end
                    names_seen[name] = true
                end
                local err = xws_records_check(lk, id, {}, entries, kinds, msgs)
                if err then
                    err[3] = users_field(err[3] == 'protocol.context' and 'context' or 'name', idx)
                    return err
                end
                local dev = r[7] or ''
                if dev ~= '' then
                    if redis.call('HEXISTS', k[43], dev) == 0 then
                        return xws_fail(400, 'unknown_reference', users_field('device', idx), 'no device has id ' .. dev)
                    end
                    local slot = users_line_slot(nrec) or 1
                    local key = dev .. '\0' .. slot
                    if slots_seen[key] then
                        return xws_fail(400, 'already_exists', users_field('num', idx),
                            'slot ' .. slot .. ' of device ' .. dev .. ' is given twice')
                    end
                    slots_seen[key] = true
                    for x in string.gmatch(redis.call('HGET', k[19], dev) or '', '[^,]+') do
                        if tonumber(users_line_slot(redis.call('HGET', k[10], x)) or 1) == tonumber(slot) then
                            return xws_fail(400, 'already_exists', users_field('num', idx),
                                'slot ' .. slot .. ' of device ' .. dev .. ' is taken by line ' .. x)
                        end
                    end
                end
                firstctx = firstctx or ctxname
                final[#final + 1] = id
                newids[#newids + 1] = r
            end
        end
    end
    -- the voicemail: its context is the given one, else the first line's, else 'default'
    local vm, vmkey = nil, nil
    if a[15] ~= '' then
        vm = users_unpack(a[15])
        if not vm then
            return xws_fail(500, 'internal_error', '', 'the voicemail record is malformed')
        end
        if (vm.context or '') == '' then
            if not setlines then
                local cur = string.match(redis.call('HGET', k[17], uid) or '', '[^,]+')
                firstctx = cur and users_line_context(redis.call('HGET', k[10], cur))
            end
            vm.context = firstctx or 'default'
        end
        if redis.call('HEXISTS', k[14], vm.context) == 0 then
            return xws_fail(400, 'unknown_reference', 'voicemail.context', 'no context is named ' .. vm.context)
        end
        vmkey = vm.mailbox .. '@' .. vm.context
        local owner = redis.call('HGET', k[22], vmkey)
        if owner and owner ~= uid then
            return xws_fail(400, 'already_exists', 'voicemail.mailbox',
                'mailbox ' .. vm.mailbox .. ' of context ' .. vm.context .. ' belongs to user ' .. owner)
        end
    end
    -- dialactions and memberships: their targets exist
    local darows, groups, queues = xws_unpack_or(a[19], {}), nil, nil
    local err = users_dialactions_check(k, darows)
    if err then
        return err
    end
    if a[20] == 'set' then
        groups, err = users_members_check(k[39], 'group', xws_unpack_or(a[21], {}))
        if err then
            return err
        end
    end
    if a[22] == 'set' then
        queues, err = users_members_check(k[40], 'queue', xws_unpack_or(a[23], {}))
        if err then
            return err
        end
    end
    local fkrows = xws_unpack_or(a[24], {})
    err = users_funckeys_check(k, fkrows)
    if err then
        return err
    end
    -- writes: the user
    if vm then
        local u = users_unpack(rec)
        if not u then
            return xws_fail(500, 'internal_error', '', 'the user record is malformed')
        end
        local vmid = tonumber(u.voicemailid) or 0
        if vmid <= 0 then
            vmid = redis.call('INCR', k[23])
        end
        u.voicemailid = vmid
        u.enablevoicemail = true
        rec = cmsgpack.pack(u)
        if not adding then
            users_vm_remove(k, uid)
        end
        redis.call('HSET', k[21], uid, cmsgpack.pack(vm))
        redis.call('HSET', k[22], vmkey, uid)
        xws_refs_add(k[15], vm.context, 1)
    end
    if adding then
        redis.call('INCR', k[2])
    end
    redis.call('HSET', k[3], uid, rec)
    if nlogin ~= ologin then
        if ologin ~= '' and redis.call('HGET', k[5], ologin) == uid then
            redis.call('HDEL', k[5], ologin)
        end
        if nlogin ~= '' then
            redis.call('HSET', k[5], nlogin, uid)
        end
    end
    if nent ~= oent then
        if oent ~= '' then
            xws_refs_add(k[7], oent, -1)
        end
        xws_refs_add(k[7], nent, 1)
    end
    redis.call('HSET', k[8], uid, ident)
    local r = ipbx_refs_keys(k, USERS_REFS_FIRST)
    users_funckeys_put(r, uid, fkrows)
    redis.call('HSET', k[24], uid, a[16])
    if a[17] == '1' and not vm and not adding then
        users_vm_remove(k, uid)
    end
    if a[18] ~= '' then
        users_dialactions_put(r, uid, a[18], darows)
    end
    if groups then
        users_members_put(r.user_groups, r.group_members, r.ver_groups, uid, groups)
    end
    if queues then
        users_members_put(r.user_queues, r.queue_members, r.ver_queues, uid, queues)
    end
    -- its lines (the callerid of those it keeps follows its names: the sixth element of an old line)
    local rewritten = {}
    if setlines then
        for _, l in ipairs(oldlines) do
            if not keep[l[1]] then
                users_line_remove(k, lk, kinds, l)
            end
        end
        for _, r in ipairs(renumbered) do
            local id = r[2]
            rewritten[id] = true
            redis.call('HSET', k[10], id, r[8])
            xws_records_apply(lk, id, r[9] or {}, r[10] or {}, kinds)
            local numbers, numidx = users_numkeys(k, r[11])
            if (r[12] or '') ~= '' then
                xws_number_release(numbers, numidx, r[12], 'user', 'line/' .. id)
            end
            xws_number_take(numbers, numidx, r[3], 'user', 'line/' .. id)
        end
        for _, r in ipairs(newids) do
            local id = r.id
            redis.call('INCR', k[9])
            redis.call('HSET', k[10], id, r[2])
            xws_records_apply(lk, id, {}, r[3] or {}, kinds)
            if (r[5] or '') ~= '' then
                local numbers, numidx = users_numkeys(k, r[4])
                xws_number_take(numbers, numidx, r[5], 'user', 'line/' .. id)
            end
            if (r[7] or '') ~= '' then
                redis.call('HSET', k[18], id, r[7])
                xws_lookup_edit(k[19], r[7], id, true)
                xws_bump(k[20])
            end
        end
        for _, id in ipairs(final) do
            redis.call('HSET', k[16], id, uid)
        end
        for _, l in ipairs(oldlines) do
            if keep[l[1]] and not rewritten[l[1]] and (l[6] or '') ~= '' then
                redis.call('HSET', k[10], l[1], l[6])
            end
        end
        if #final > 0 then
            redis.call('HSET', k[17], uid, table.concat(final, ','))
        else
            redis.call('HDEL', k[17], uid)
        end
        xws_bump(k[11])
    elseif (redis.call('HGET', k[17], uid) or '') ~= '' then
        for _, l in ipairs(oldlines) do
            if (l[6] or '') ~= '' then
                redis.call('HSET', k[10], l[1], l[6])
            end
        end
        xws_bump(k[11]) -- the lines show the owner's identity
    end
    xws_bump(k[4])
    if adding then
        return {200, cmsgpack.pack(uid)}
    end
    return {200}
end

-- removes user uid and everything that is its own: lines, login, entity reference, identity
local function users_remove(k, lk, kinds, uid, login, ent, oldlines)
    for _, l in ipairs(oldlines) do
        users_line_remove(k, lk, kinds, l)
    end
    redis.call('HDEL', k[17], uid)
    redis.call('HDEL', k[3], uid)
    if login ~= '' and redis.call('HGET', k[5], login) == uid then
        redis.call('HDEL', k[5], login)
    end
    if ent ~= '' then
        xws_refs_add(k[7], ent, -1)
    end
    redis.call('HDEL', k[8], uid)
    users_vm_remove(k, uid)
    -- also removes its user:extra record (its function keys) and their funckey:target entries
    ipbx_refs_forget(ipbx_refs_keys(k, USERS_REFS_FIRST), 'user', uid)
end

-- delete. ARGV after the ttl: {{uid, user read, login (folded), entity id, old lines}, ...}, kinds,
-- all ('1': deleteall, the list must be every user; {204} when there is none)
local function users_del(k, a)
    local list, kinds, all = xws_unpack_or(a[2], {}), a[3], a[4] == '1'
    local lk = users_line_keys(k)
    if all then
        local n = redis.call('HLEN', k[3])
        if n == 0 then
            return {204}
        end
        if n ~= #list then
            return {0, 'changed'}
        end
    end
    for _, u in ipairs(list) do
        local cur = redis.call('HGET', k[3], u[1])
        if not cur then
            if all then
                return {0, 'changed'}
            end
            return xws_fail(404, 'not_found', 'id', 'no user has id ' .. u[1])
        end
        if cur ~= u[2] then
            return {0, 'changed'}
        end
        local c = users_lines_unchanged(k, u[1], u[5] or {})
        if c then
            return c
        end
    end
    local lines = false
    for _, u in ipairs(list) do
        users_remove(k, lk, kinds, u[1], u[3] or '', u[4] or '', u[5] or {})
        lines = lines or #(u[5] or {}) > 0
    end
    if lines then
        xws_bump(k[11])
    end
    xws_bump(k[4])
    return {200}
end

xws_register_function('ipbx_users_put', function(keys, args)
    return xws_write(keys, args, users_put)
end)
xws_register_function('ipbx_users_del', function(keys, args)
    return xws_write(keys, args, users_del)
end)
