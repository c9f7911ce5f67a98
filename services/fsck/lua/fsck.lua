-- fsck.lua - the read-only consistency check of xws-fsck (library xws_fsck, after the common
-- prelude, whose number helpers it reuses). See ../README.md for every rule, key by key.
--
-- One call, fsck_check (flags no-writes: FCALL_RO), reads the whole store in one atomic step, so
-- that no write racing the check can make it report a false problem.
--
-- KEYS: the fixed keys, in the order of their names in ARGV, then one pair
--       (context:numbers:<ctx>, context:numidx:<ctx>) per context name of ARGV.
-- ARGV: areas ("all" or "a,b,..."), number of fixed keys N, the N key names (suffixes after the
--       prefix: "line:data", ...), then the context names.
-- Returns {-1} when a context exists that the caller did not pass (a context was added between
-- the caller's listing and this call: list again), else {checked, {area, key, problem, expected},
-- ...} where checked is the number of records and index entries read.

-- ---- reading ------------------------------------------------------------------------------------

local function fsck_new(keys, args)
    local s = {K = {}, ctx = {}, areas = {}, all = args[1] == 'all', out = {0}, checked = 0, cache = {}}
    for a in string.gmatch(args[1], '[^,]+') do
        s.areas[a] = true
    end
    local n = tonumber(args[2])
    for i = 1, n do
        s.K[args[2 + i]] = keys[i]
    end
    local i = 1
    for j = 3 + n, #args do
        s.ctx[#s.ctx + 1] = {name = args[j], numbers = keys[n + i], numidx = keys[n + i + 1]}
        i = i + 2
    end
    return s
end

local function fsck_want(s, area)
    return s.all or s.areas[area] == true
end

-- records a problem: area, key (a name of s.K, shown with its prefix) and field (or nil), what is
-- wrong, what was expected
local function fsck_bad(s, area, key, field, what, expected)
    local k = s.K[key] or key
    if field ~= nil then
        k = k .. '[' .. tostring(field) .. ']'
    end
    s.out[#s.out + 1] = {area, k, what, expected}
end

-- the fields of hash key (a name of s.K) as a table field -> value ({} when absent); a key of
-- another type is a problem of area
local function fsck_hash(s, area, key)
    if s.cache[key] then
        return s.cache[key]
    end
    local full = s.K[key] or key
    local t = redis.call('TYPE', full)['ok']
    local out = {}
    if t == 'hash' then
        local all = redis.call('HGETALL', full)
        for i = 1, #all, 2 do
            out[all[i]] = all[i + 1]
        end
        s.checked = s.checked + #all / 2
    elseif t ~= 'none' then
        fsck_bad(s, area, key, nil, 'the key is a ' .. t, 'a hash')
    end
    s.cache[key] = out
    return out
end

-- the value of counter key as a number (0 when absent), or nil after reporting it
local function fsck_counter(s, area, key)
    local full = s.K[key]
    local t = redis.call('TYPE', full)['ok']
    if t == 'none' then
        return 0
    end
    if t ~= 'string' then
        fsck_bad(s, area, key, nil, 'the key is a ' .. t, 'a string holding a number')
        return nil
    end
    local v = redis.call('GET', full)
    if not string.match(v, '^%d+$') then
        fsck_bad(s, area, key, nil, 'holds "' .. v .. '"', 'a non-negative integer')
        return nil
    end
    return tonumber(v)
end

-- a msgpack blob as a table, or nil
local function fsck_unpack(blob)
    if type(blob) ~= 'string' then
        return nil
    end
    local ok, t = pcall(cmsgpack.unpack, blob)
    if ok and type(t) == 'table' then
        return t
    end
    return nil
end

-- the ids of a "id,id,..." list
local function fsck_split(v)
    local out = {}
    for x in string.gmatch(v or '', '[^,]+') do
        out[#out + 1] = x
    end
    return out
end

local function fsck_is_id(id)
    return string.match(id, '^[1-9]%d*$') ~= nil
end

local function fsck_lower(v)
    return (string.gsub(v, '%u', string.lower))
end

-- a number or a digit string as an id string, or nil
local function fsck_idstr(v)
    if type(v) == 'number' and v == math.floor(v) then
        return string.format('%d', v)
    end
    if type(v) == 'string' and string.match(v, '^%d+$') then
        return v
    end
    return nil
end

-- the records of data hash key decoded (id -> table); undecodable records and ids that are not
-- positive integers are problems of area
local function fsck_records(s, area, key, what, idcheck)
    local recs = {}
    for id, blob in pairs(fsck_hash(s, area, key)) do
        local r = fsck_unpack(blob)
        if r == nil then
            fsck_bad(s, area, key, id, 'the ' .. what .. ' record does not decode', 'a msgpack map or array')
        else
            recs[id] = r
        end
        if idcheck and not idcheck(id) then
            fsck_bad(s, area, key, id, 'the id is not valid', 'a positive integer without leading zeros')
        end
    end
    return recs
end

-- ---- the objects, decoded once -----------------------------------------------------------------

-- The record sets, each decoded at its first use (an area that does not need the lines does not
-- pay for decoding them): s.entities, s.contexts, s.lines, ... (id -> table).
local FSCK_SETS = {
    entities = {'entities', 'entity:data', 'entity', fsck_is_id},
    contexts = {'contexts', 'context:data', 'context', nil},
    lines = {'lines', 'line:data', 'line', fsck_is_id},
    devices = {'devices', 'device:data', 'device', fsck_is_id},
    users = {'users', 'user:data', 'user', fsck_is_id},
    groups = {'groups', 'group:data', 'group', fsck_is_id},
    queues = {'queues', 'queue:data', 'queue', fsck_is_id},
    pickups = {'pickups', 'pickup:data', 'pickup', function(id)
        return string.match(id, '^%d+$') ~= nil and tonumber(id) <= 63 and (id == '0' or string.sub(id, 1, 1) ~= '0')
    end},
    vms = {'voicemail', 'user:voicemail', 'voicemail', nil},
}

local function fsck_load(s)
    setmetatable(s, {__index = function(t, name)
        local d = FSCK_SETS[name]
        if d ~= nil then
            local recs = fsck_records(t, d[1], d[2], d[3], d[4])
            rawset(t, name, recs)
            return recs
        end
        if name == 'objects' then
            local o = {user = t.users, group = t.groups, queue = t.queues}
            rawset(t, name, o)
            return o
        end
        return nil
    end})
end

-- the field f of table t when it is a non-empty string, else nil
local function fsck_str(t, f)
    local v = type(t) == 'table' and t[f] or nil
    if type(v) == 'string' and v ~= '' then
        return v
    end
    return nil
end

-- ---- unique indexes, lookups, counters ---------------------------------------------------------

-- a unique index (value -> id) against the records: value(rec) gives the indexed value (nil: not
-- indexed)
local function fsck_unique(s, area, ixkey, recs, what, value)
    local ix = fsck_hash(s, area, ixkey)
    for id, r in pairs(recs) do
        local v = value(r)
        if v ~= nil and ix[v] ~= id then
            fsck_bad(s, area, ixkey, v, ix[v] and ('names ' .. what .. ' ' .. ix[v]) or 'is missing',
                     what .. ' ' .. id .. ' (its ' .. what .. ' record holds this value)')
        end
    end
    for v, id in pairs(ix) do
        local r = recs[id]
        if r == nil then
            fsck_bad(s, area, ixkey, v, 'names ' .. what .. ' ' .. id .. ', which does not exist', 'an existing ' .. what)
        elseif value(r) ~= v then
            fsck_bad(s, area, ixkey, v, 'names ' .. what .. ' ' .. id .. ', whose value is "' .. tostring(value(r) or '') .. '"',
                     'no entry, or the ' .. what .. ' holding this value')
        end
    end
end

-- a sequence counter against the highest id of recs
local function fsck_seq(s, area, seqkey, recs)
    local seq = fsck_counter(s, area, seqkey)
    if seq == nil then
        return
    end
    local top = 0
    for id in pairs(recs) do
        local n = tonumber(id) or 0
        if n > top then
            top = n
        end
    end
    if seq < top then
        fsck_bad(s, area, seqkey, nil, 'is ' .. seq .. ', below the highest id ' .. top, 'at least ' .. top)
    end
end

-- a reference count hash (target -> count) against the expected counts (target -> n > 0)
local function fsck_refs(s, area, refkey, expected, what)
    local refs = fsck_hash(s, area, refkey)
    for t, v in pairs(refs) do
        local n = tonumber(v)
        local want = expected[t] or 0
        if n == nil or n ~= want or n <= 0 then
            fsck_bad(s, area, refkey, t, 'counts ' .. v, want > 0 and (want .. ' (' .. what .. ')') or 'no entry (nothing refers to it)')
        end
    end
    for t, want in pairs(expected) do
        if refs[t] == nil then
            fsck_bad(s, area, refkey, t, 'is missing', want .. ' (' .. what .. ')')
        end
    end
end

local function fsck_count(t, k)
    t[k] = (t[k] or 0) + 1
end

-- a "id,id,..." list hash (owner -> ids) against the forward map (id -> owner), both ways: every
-- listed id maps back to the owner, every mapped id is listed once under its owner
local function fsck_lists(s, area, listkey, fwdkey, fwd, owners, members, owhat, mwhat)
    local lists = fsck_hash(s, area, listkey)
    for o, v in pairs(lists) do
        if owners[o] == nil then
            fsck_bad(s, area, listkey, o, mwhat .. 's listed under ' .. owhat .. ' ' .. o .. ', which does not exist',
                     'an existing ' .. owhat)
        end
        local seen = {}
        for _, id in ipairs(fsck_split(v)) do
            if seen[id] then
                fsck_bad(s, area, listkey, o, 'lists ' .. mwhat .. ' ' .. id .. ' twice', 'each ' .. mwhat .. ' once')
            end
            seen[id] = true
            if members[id] == nil then
                fsck_bad(s, area, listkey, o, 'lists ' .. mwhat .. ' ' .. id .. ', which does not exist', 'existing ' .. mwhat .. 's')
            elseif fwd[id] ~= o then
                fsck_bad(s, area, listkey, o, 'lists ' .. mwhat .. ' ' .. id .. ', but ' .. s.K[fwdkey] .. '[' .. id .. '] is ' ..
                             (fwd[id] or 'absent'), 'the ' .. mwhat .. 's whose ' .. fwdkey .. ' entry is ' .. o)
            end
        end
    end
    for id, o in pairs(fwd) do
        if members[id] == nil then
            fsck_bad(s, area, fwdkey, id, mwhat .. ' ' .. id .. ' does not exist', 'entries of existing ' .. mwhat .. 's only')
        end
        if owners[o] == nil then
            fsck_bad(s, area, fwdkey, id, 'names ' .. owhat .. ' ' .. o .. ', which does not exist', 'an existing ' .. owhat)
        end
        local found = false
        for _, x in ipairs(fsck_split(lists[o])) do
            found = found or x == id
        end
        if not found then
            fsck_bad(s, area, fwdkey, id, 'names ' .. owhat .. ' ' .. o .. ', whose ' .. listkey .. ' entry does not list it',
                     mwhat .. ' ' .. id .. ' in ' .. s.K[listkey] .. '[' .. o .. ']')
        end
    end
end

-- the context of record id (in key) exists, when it has one
local function fsck_in_context(s, area, key, id, ctx, what)
    if ctx ~= nil and s.contexts[ctx] == nil then
        fsck_bad(s, area, key, id, what .. ' is in context ' .. ctx .. ', which does not exist', 'an existing context')
    end
end

-- ---- the areas ---------------------------------------------------------------------------------

local function fsck_entities(s)
    fsck_unique(s, 'entities', 'entity:name', s.entities, 'entity', function(r)
        return fsck_str(r, 'name')
    end)
    for id, r in pairs(s.entities) do
        if fsck_str(r, 'name') == nil then
            fsck_bad(s, 'entities', 'entity:data', id, 'the entity has no name', 'a name')
        end
    end
    fsck_seq(s, 'entities', 'entity:seq', s.entities)
    local want = {}
    for _, r in pairs(s.contexts) do
        local e = fsck_idstr(r[3])
        if e then
            fsck_count(want, e)
        end
    end
    for _, u in pairs(s.users) do
        local e = fsck_idstr(u.entityid)
        if e then
            fsck_count(want, e)
        end
    end
    fsck_refs(s, 'entities', 'entity:refs', want, 'its contexts and users')
end

local function fsck_contexts(s)
    local incl = {}
    for name, r in pairs(s.contexts) do
        if r[1] ~= name then
            fsck_bad(s, 'contexts', 'context:data', name, 'the record is named "' .. tostring(r[1]) .. '"', 'the name of its field')
        end
        local e = fsck_idstr(r[3])
        if e == nil or s.entities[e] == nil then
            fsck_bad(s, 'contexts', 'context:data', name, 'its entity ' .. tostring(r[3]) .. ' does not exist', 'an existing entity id')
        end
        if r[6] ~= nil and type(r[6]) ~= 'table' then
            fsck_bad(s, 'contexts', 'context:data', name, 'its include list is not a list', 'a list of context names')
        end
        for _, n in ipairs(type(r[6]) == 'table' and r[6] or {}) do
            if s.contexts[n] == nil then
                fsck_bad(s, 'contexts', 'context:data', name, 'includes context ' .. tostring(n) .. ', which does not exist',
                         'existing contexts')
            else
                fsck_count(incl, n)
            end
        end
    end
    fsck_refs(s, 'contexts', 'context:inclrefs', incl, 'the contexts including it')
    -- context:refs: every line, voicemail, group and queue counts one for its context
    local want = {}
    for _, l in pairs(s.lines) do
        local c = fsck_str(l.protocol, 'context')
        if c then
            fsck_count(want, c)
        end
    end
    for _, set in ipairs({s.vms, s.groups, s.queues}) do
        for _, r in pairs(set) do
            local c = fsck_str(r, 'context')
            if c then
                fsck_count(want, c)
            end
        end
    end
    fsck_refs(s, 'contexts', 'context:refs', want, 'its lines, voicemails, groups and queues')
end

-- the numbered objects: (context, number) -> "<kind>:<owner>" as the records say
local function fsck_expected_numbers(s)
    local want = {}
    local function add(ctx, num, holder)
        if ctx ~= nil and num ~= nil then
            want[ctx] = want[ctx] or {}
            want[ctx][num] = holder
        end
    end
    for id, l in pairs(s.lines) do
        add(fsck_str(l.protocol, 'context'), fsck_str(l.linefeatures, 'number'), 'user:line/' .. id)
    end
    for id, g in pairs(s.groups) do
        add(fsck_str(g, 'context'), fsck_str(g, 'number'), 'group:group/' .. id)
    end
    for id, q in pairs(s.queues) do
        add(fsck_str(q, 'context'), fsck_str(q, 'number'), 'queue:queue/' .. id)
    end
    return want
end

-- what the object named by holder "<kind>:<type>/<id>" says about its number, for a message
local function fsck_holder_state(s, holder)
    local kind, typ, id = string.match(holder, '^(%a+):(%a+)/(%d+)$')
    local recs = {line = s.lines, group = s.groups, queue = s.queues}
    local kinds = {line = 'user', group = 'group', queue = 'queue'}
    if kind == nil or recs[typ] == nil or kinds[typ] ~= kind then
        return 'an owner of no known kind'
    end
    if recs[typ][id] == nil then
        return typ .. ' ' .. id .. ', which does not exist'
    end
    return typ .. ' ' .. id .. ', which does not hold this number here'
end

local function fsck_numbers(s)
    local want = fsck_expected_numbers(s)
    local passed = {}
    for _, c in ipairs(s.ctx) do
        passed[c.name] = true
        local numbers = fsck_hash(s, 'numbers', c.numbers)
        local wctx = want[c.name] or {}
        local rec = s.contexts[c.name]
        if rec == nil and next(numbers) ~= nil then
            fsck_bad(s, 'numbers', c.numbers, nil, 'numbers are held in context ' .. c.name .. ', which does not exist',
                     'no key (or an existing context)')
        end
        for num, holder in pairs(numbers) do
            if wctx[num] ~= holder then
                fsck_bad(s, 'numbers', c.numbers, num, 'is held by ' .. holder .. ': ' .. fsck_holder_state(s, holder),
                         wctx[num] and ('held by ' .. wctx[num]) or 'no entry (no object has this number here)')
            end
            local kind = string.match(holder, '^(%a+):')
            local pos = kind and XWS_NUMBER_TYPES[kind]
            local ranges = rec and pos and rec[pos]
            if type(ranges) == 'table' and #ranges > 0 and not xws_in_ranges(num, ranges) then
                fsck_bad(s, 'numbers', c.numbers, num, 'lies outside the ' .. kind .. ' ranges of context ' .. c.name,
                         'a number inside one of them')
            end
        end
        for num, holder in pairs(wctx) do
            if numbers[num] == nil then
                fsck_bad(s, 'numbers', c.numbers, num, 'is missing: ' .. holder .. ' has this number in context ' .. c.name,
                         'held by ' .. holder)
            end
        end
        -- the sorted index: exactly the all-digit numbers, scored by their value
        local t = redis.call('TYPE', c.numidx)['ok']
        local inidx = {}
        if t == 'zset' then
            local z = redis.call('ZRANGE', c.numidx, 0, -1, 'WITHSCORES')
            s.checked = s.checked + #z / 2
            for i = 1, #z, 2 do
                local m, score = z[i], tonumber(z[i + 1])
                inidx[m] = true
                if not string.match(m, '^%d+$') then
                    fsck_bad(s, 'numbers', c.numidx, m, 'is not all digits', 'only all-digit numbers')
                elseif score ~= tonumber(m) then
                    fsck_bad(s, 'numbers', c.numidx, m, 'has score ' .. z[i + 1], 'score ' .. m)
                end
                if numbers[m] == nil then
                    fsck_bad(s, 'numbers', c.numidx, m, 'is not in ' .. c.numbers, 'only the numbers of that hash')
                end
            end
        elseif t ~= 'none' then
            fsck_bad(s, 'numbers', c.numidx, nil, 'the key is a ' .. t, 'a sorted set')
        end
        for num in pairs(numbers) do
            if string.match(num, '^%d+$') and not inidx[num] then
                fsck_bad(s, 'numbers', c.numidx, num, 'is missing', 'every all-digit number of ' .. c.numbers)
            end
        end
    end
    for ctx, nums in pairs(want) do
        if not passed[ctx] then
            for num, holder in pairs(nums) do
                fsck_bad(s, 'numbers', 'context:numbers:' .. ctx, num, 'is missing (context ' .. ctx .. ' does not exist)',
                         'held by ' .. holder)
            end
        end
    end
end

local function fsck_lines(s)
    for id, l in pairs(s.lines) do
        if type(l.linefeatures) ~= 'table' or type(l.protocol) ~= 'table' then
            fsck_bad(s, 'lines', 'line:data', id, 'the line lacks its linefeatures or protocol part', 'both parts')
        end
        fsck_in_context(s, 'lines', 'line:data', id, fsck_str(l.protocol, 'context'), 'the line')
    end
    fsck_unique(s, 'lines', 'line:name', s.lines, 'line', function(r)
        local n = fsck_str(r.protocol, 'name')
        return n and fsck_lower(n)
    end)
    fsck_seq(s, 'lines', 'line:seq', s.lines)
    fsck_refs(s, 'lines', 'line:refs', {}, 'nothing counts references to lines')
    -- owners
    local owner = fsck_hash(s, 'lines', 'line:owner')
    fsck_lists(s, 'lines', 'line:byuser', 'line:owner', owner, s.users, s.lines, 'user', 'line')
    -- devices and their slots
    local dev = fsck_hash(s, 'lines', 'line:device')
    fsck_lists(s, 'lines', 'line:bydevice', 'line:device', dev, s.devices, s.lines, 'device', 'line')
    local slots = {}
    for id, d in pairs(dev) do
        local l = s.lines[id]
        local num = l and type(l.linefeatures) == 'table' and l.linefeatures.num
        if num ~= nil then
            local key = d .. '\0' .. tostring(num)
            if slots[key] then
                fsck_bad(s, 'lines', 'line:device', id, 'takes slot ' .. tostring(num) .. ' of device ' .. d .. ', as line ' ..
                             slots[key] .. ' does', 'one line per slot of a device')
            end
            slots[key] = id
        end
    end
end

local function fsck_devices(s)
    local function field(f)
        return function(r)
            local v = r[f]
            if type(v) == 'number' then
                v = string.format('%d', v)
            end
            if type(v) == 'string' and v ~= '' then
                return fsck_lower(v)
            end
            return nil
        end
    end
    fsck_unique(s, 'devices', 'device:mac', s.devices, 'device', field('mac'))
    fsck_unique(s, 'devices', 'device:deviceid', s.devices, 'device', field('deviceid'))
    -- the ip lookup: value -> "id,id,..."
    local ipof = field('ip')
    local ix = fsck_hash(s, 'devices', 'device:ip')
    for v, ids in pairs(ix) do
        local seen = {}
        for _, id in ipairs(fsck_split(ids)) do
            if seen[id] then
                fsck_bad(s, 'devices', 'device:ip', v, 'lists device ' .. id .. ' twice', 'each device once')
            end
            seen[id] = true
            local r = s.devices[id]
            if r == nil then
                fsck_bad(s, 'devices', 'device:ip', v, 'lists device ' .. id .. ', which does not exist', 'existing devices')
            elseif ipof(r) ~= v then
                fsck_bad(s, 'devices', 'device:ip', v, 'lists device ' .. id .. ', whose ip is "' .. tostring(ipof(r) or '') .. '"',
                         'the devices with this ip')
            end
        end
    end
    for id, r in pairs(s.devices) do
        local v = ipof(r)
        if v ~= nil then
            local found = false
            for _, x in ipairs(fsck_split(ix[v])) do
                found = found or x == id
            end
            if not found then
                fsck_bad(s, 'devices', 'device:ip', v, 'does not list device ' .. id, 'device ' .. id .. ' (its ip)')
            end
        end
    end
    fsck_seq(s, 'devices', 'device:seq', s.devices)
    fsck_refs(s, 'devices', 'device:refs', {}, 'nothing counts references to devices')
end

local function fsck_users(s)
    fsck_unique(s, 'users', 'user:login', s.users, 'user', function(r)
        local v = fsck_str(r, 'loginclient')
        return v and fsck_lower(v)
    end)
    fsck_seq(s, 'users', 'user:seq', s.users)
    for uid, u in pairs(s.users) do
        local e = fsck_idstr(u.entityid)
        if e == nil or s.entities[e] == nil then
            fsck_bad(s, 'users', 'user:data', uid, 'its entity ' .. tostring(u.entityid) .. ' does not exist', 'an existing entity id')
        end
    end
    -- identities: "First Last" of every user, nothing else
    local ident = fsck_hash(s, 'users', 'user:identity')
    for uid, u in pairs(s.users) do
        local f, l = fsck_str(u, 'firstname') or '', fsck_str(u, 'lastname') or ''
        local want = f .. ((f ~= '' and l ~= '') and ' ' or '') .. l
        if ident[uid] ~= want then
            fsck_bad(s, 'users', 'user:identity', uid, ident[uid] and ('is "' .. ident[uid] .. '"') or 'is missing', '"' .. want .. '"')
        end
    end
    for uid in pairs(ident) do
        if s.users[uid] == nil then
            fsck_bad(s, 'users', 'user:identity', uid, 'user ' .. uid .. ' does not exist', 'entries of existing users only')
        end
    end
    for uid in pairs(fsck_hash(s, 'users', 'user:extra')) do
        if s.users[uid] == nil then
            fsck_bad(s, 'users', 'user:extra', uid, 'user ' .. uid .. ' does not exist', 'entries of existing users only')
        end
    end
end

local function fsck_voicemail(s)
    local top = 0
    for uid, vm in pairs(s.vms) do
        local u = s.users[uid]
        if u == nil then
            fsck_bad(s, 'voicemail', 'user:voicemail', uid, 'user ' .. uid .. ' does not exist', 'voicemails of existing users only')
        else
            local vmid = tonumber(u.voicemailid) or 0
            if vmid <= 0 or u.enablevoicemail ~= true then
                fsck_bad(s, 'voicemail', 'user:data', uid, 'the user has a voicemail but voicemailid ' .. tostring(u.voicemailid) ..
                             ', enablevoicemail ' .. tostring(u.enablevoicemail), 'a voicemailid > 0 and enablevoicemail true')
            end
        end
        if fsck_str(vm, 'mailbox') == nil or fsck_str(vm, 'context') == nil then
            fsck_bad(s, 'voicemail', 'user:voicemail', uid, 'the voicemail lacks its mailbox or context', 'both')
        end
        fsck_in_context(s, 'voicemail', 'user:voicemail', uid, fsck_str(vm, 'context'), 'the voicemail')
    end
    for _, u in pairs(s.users) do
        local vmid = tonumber(u.voicemailid) or 0
        if vmid > top then
            top = vmid
        end
    end
    fsck_unique(s, 'voicemail', 'voicemail:mailbox', s.vms, 'user', function(vm)
        local m, c = fsck_str(vm, 'mailbox'), fsck_str(vm, 'context')
        return m and c and (m .. '@' .. c)
    end)
    local seq = fsck_counter(s, 'voicemail', 'voicemail:seq')
    if seq ~= nil and seq < top then
        fsck_bad(s, 'voicemail', 'voicemail:seq', nil, 'is ' .. seq .. ', below the highest voicemailid ' .. top, 'at least ' .. top)
    end
end

-- groups or queues: name index, counter, and the memberships both ways
local function fsck_members(s, area, kind)
    local recs = s.objects[kind]
    fsck_unique(s, area, kind .. ':name', recs, kind, function(r)
        return fsck_str(r, 'name')
    end)
    fsck_seq(s, area, kind .. ':seq', recs)
    for id, r in pairs(recs) do
        fsck_in_context(s, area, kind .. ':data', id, fsck_str(r, 'context'), 'the ' .. kind)
    end
    local members = fsck_hash(s, area, kind .. ':members')
    local userkey = 'user:' .. kind .. 's'
    local bymember = fsck_hash(s, area, userkey)
    local maps = {}
    for uid, blob in pairs(bymember) do
        local m = fsck_unpack(blob)
        if m == nil then
            fsck_bad(s, area, userkey, uid, 'does not decode', 'a msgpack map ' .. kind .. ' id -> options')
            m = {}
        end
        maps[uid] = m
        if s.users[uid] == nil then
            fsck_bad(s, area, userkey, uid, 'user ' .. uid .. ' does not exist', 'memberships of existing users only')
        end
        for gid in pairs(m) do
            gid = tostring(gid)
            if recs[gid] == nil then
                fsck_bad(s, area, userkey, uid, 'names ' .. kind .. ' ' .. gid .. ', which does not exist', 'existing ' .. kind .. 's')
            end
            local found = false
            for _, x in ipairs(fsck_split(members[gid])) do
                found = found or x == uid
            end
            if not found then
                fsck_bad(s, area, userkey, uid, 'names ' .. kind .. ' ' .. gid .. ', whose member list does not list the user',
                         'user ' .. uid .. ' in ' .. s.K[kind .. ':members'] .. '[' .. gid .. ']')
            end
        end
    end
    for gid, v in pairs(members) do
        if recs[gid] == nil then
            fsck_bad(s, area, kind .. ':members', gid, kind .. ' ' .. gid .. ' does not exist', 'member lists of existing ' .. kind .. 's only')
        end
        local seen = {}
        for _, uid in ipairs(fsck_split(v)) do
            if seen[uid] then
                fsck_bad(s, area, kind .. ':members', gid, 'lists user ' .. uid .. ' twice', 'each member once')
            end
            seen[uid] = true
            if s.users[uid] == nil then
                fsck_bad(s, area, kind .. ':members', gid, 'lists user ' .. uid .. ', which does not exist', 'existing users')
            elseif maps[uid] == nil or (maps[uid][gid] == nil and maps[uid][tonumber(gid)] == nil) then
                fsck_bad(s, area, kind .. ':members', gid, 'lists user ' .. uid .. ', whose ' .. userkey .. ' entry lacks this ' .. kind,
                         kind .. ' ' .. gid .. ' in ' .. s.K[userkey] .. '[' .. uid .. ']')
            end
        end
    end
end

-- the object kind/id ('user', 'group', 'queue') exists
local function fsck_exists(s, kind, id)
    local recs = s.objects[kind]
    return recs ~= nil and id ~= nil and recs[id] ~= nil
end

-- "a,b" lists of target hash: every listed id must have a reference to the target (has(id, t))
local function fsck_targets(s, area, key, has, what)
    for t, v in pairs(fsck_hash(s, area, key)) do
        local seen = {}
        for _, id in ipairs(fsck_split(v)) do
            if seen[id] then
                fsck_bad(s, area, key, t, 'lists ' .. what .. ' ' .. id .. ' twice', 'each ' .. what .. ' once')
            end
            seen[id] = true
            if not has(id, t) then
                fsck_bad(s, area, key, t, 'lists ' .. what .. ' ' .. id .. ', which does not refer to ' .. t,
                         'the ' .. what .. 's referring to ' .. t)
            end
        end
    end
end

local function fsck_listed(s, key, t, id)
    for _, x in ipairs(fsck_split(fsck_hash(s, nil, key)[t])) do
        if x == id then
            return true
        end
    end
    return false
end

local function fsck_pickups(s)
    fsck_unique(s, 'pickups', 'pickup:name', s.pickups, 'pickup', function(r)
        return fsck_str(r, 'name')
    end)
    fsck_hash(s, 'pickups', 'pickup:target')
    local targets = {}
    for pid, blob in pairs(fsck_hash(s, 'pickups', 'pickup:rows')) do
        local rows = fsck_unpack(blob)
        targets[pid] = {}
        if rows == nil then
            fsck_bad(s, 'pickups', 'pickup:rows', pid, 'does not decode', 'a msgpack array of rows')
            rows = {}
        end
        if s.pickups[pid] == nil then
            fsck_bad(s, 'pickups', 'pickup:rows', pid, 'pickup ' .. pid .. ' does not exist', 'rows of existing pickups only')
        end
        for i, row in ipairs(rows) do
            local typ, mid = type(row) == 'table' and row.membertype, type(row) == 'table' and fsck_idstr(row.memberid)
            if type(typ) ~= 'string' or mid == nil then
                fsck_bad(s, 'pickups', 'pickup:rows', pid, 'row ' .. i .. ' lacks its membertype or memberid', 'both')
            else
                local t = typ .. ':' .. mid
                targets[pid][t] = true
                if s.objects[typ] ~= nil and not fsck_exists(s, typ, mid) then
                    fsck_bad(s, 'pickups', 'pickup:rows', pid, 'row ' .. i .. ' names ' .. typ .. ' ' .. mid .. ', which does not exist',
                             'existing members')
                end
                if not fsck_listed(s, 'pickup:target', t, pid) then
                    fsck_bad(s, 'pickups', 'pickup:target', t, 'does not list pickup ' .. pid, 'pickup ' .. pid .. ' (a row names ' .. t .. ')')
                end
            end
        end
    end
    fsck_targets(s, 'pickups', 'pickup:target', function(pid, t)
        return targets[pid] ~= nil and targets[pid][t] == true
    end, 'pickup')
end

local function fsck_dialactions(s)
    fsck_hash(s, 'dialactions', 'dialaction:target')
    local points = {}
    for uid, blob in pairs(fsck_hash(s, 'dialactions', 'user:dialaction')) do
        local events = fsck_unpack(blob)
        points[uid] = {}
        if events == nil then
            fsck_bad(s, 'dialactions', 'user:dialaction', uid, 'does not decode', 'a msgpack map event -> action')
            events = {}
        end
        if s.users[uid] == nil then
            fsck_bad(s, 'dialactions', 'user:dialaction', uid, 'user ' .. uid .. ' does not exist', 'dialactions of existing users only')
        end
        for event, a in pairs(events) do
            local typ = type(a) == 'table' and a.actiontype
            if s.objects[typ] ~= nil then
                local id = fsck_idstr(a.actionarg1)
                local t = typ .. ':' .. tostring(id or a.actionarg1)
                points[uid][t] = true
                if not fsck_exists(s, typ, id) then
                    fsck_bad(s, 'dialactions', 'user:dialaction', uid, 'event ' .. tostring(event) .. ' points at ' .. t ..
                                 ', which does not exist', 'an existing ' .. typ .. ', or actiontype none')
                end
                if not fsck_listed(s, 'dialaction:target', t, uid) then
                    fsck_bad(s, 'dialactions', 'dialaction:target', t, 'does not list user ' .. uid,
                             'user ' .. uid .. ' (its ' .. tostring(event) .. ' dialaction points here)')
                end
            end
        end
    end
    fsck_targets(s, 'dialactions', 'dialaction:target', function(uid, t)
        return points[uid] ~= nil and points[uid][t] == true
    end, 'user')
end

-- function keys (user:extra phonefunckey) against funckey:target, both ways; a key on a group or
-- a queue names an existing one (a key on a user need not: the contract's example names user 41)
local function fsck_funckeys(s)
    fsck_hash(s, 'funckeys', 'funckey:target')
    local points = {}
    for uid, blob in pairs(fsck_hash(s, 'funckeys', 'user:extra')) do
        local extra = fsck_unpack(blob)
        points[uid] = {}
        if extra == nil then
            fsck_bad(s, 'funckeys', 'user:extra', uid, 'does not decode', 'a msgpack map {phonefunckey, queueskills}')
            extra = {}
        end
        local keys = type(extra.phonefunckey) == 'table' and extra.phonefunckey or {}
        for i, fk in ipairs(keys) do
            local typ = type(fk) == 'table' and fk.type
            if typ == 'user' or typ == 'group' or typ == 'queue' then
                local t = typ .. ':' .. tostring(fk.typeval)
                points[uid][t] = true
                if typ ~= 'user' and not fsck_exists(s, typ, fsck_idstr(fk.typeval)) then
                    fsck_bad(s, 'funckeys', 'user:extra', uid, 'function key ' .. i .. ' names ' .. t .. ', which does not exist',
                             'an existing ' .. typ)
                end
                if not fsck_listed(s, 'funckey:target', t, uid) then
                    fsck_bad(s, 'funckeys', 'funckey:target', t, 'does not list user ' .. uid,
                             'user ' .. uid .. ' (its function key ' .. i .. ' names ' .. t .. ')')
                end
            end
        end
    end
    fsck_targets(s, 'funckeys', 'funckey:target', function(uid, t)
        return points[uid] ~= nil and points[uid][t] == true
    end, 'user')
end

local function fsck_group_numbers_refs(s)
    -- groups and queues: their context exists (counted in fsck_contexts); members both ways
    if fsck_want(s, 'groups') then
        fsck_members(s, 'groups', 'group')
    end
    if fsck_want(s, 'queues') then
        fsck_members(s, 'queues', 'queue')
    end
end

xws_register_function_ro('fsck_check', function(keys, args)
        local s = fsck_new(keys, args)
        local passed = {}
        for _, c in ipairs(s.ctx) do
            passed[c.name] = true
        end
        for _, name in ipairs(redis.call('HKEYS', s.K['context:data'])) do
            if not passed[name] then
                return {-1}
            end
        end
        fsck_load(s)
        local steps = {
            {'entities', fsck_entities}, {'contexts', fsck_contexts}, {'numbers', fsck_numbers}, {'lines', fsck_lines},
            {'devices', fsck_devices}, {'users', fsck_users}, {'voicemail', fsck_voicemail}, {'pickups', fsck_pickups},
            {'dialactions', fsck_dialactions}, {'funckeys', fsck_funckeys},
        }
        for _, st in ipairs(steps) do
            if fsck_want(s, st[1]) then
                st[2](s)
            end
        end
        fsck_group_numbers_refs(s)
        -- problems found while loading belong to their area: drop those of areas not asked for
        local out = {s.checked}
        for i = 2, #s.out do
            if fsck_want(s, s.out[i][1]) then
                out[#out + 1] = s.out[i]
            end
        end
        return out
    end)
