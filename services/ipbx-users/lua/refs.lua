-- refs.lua - references between users, groups, queues and pickups (spec §6): the shared key
-- layout of services/ipbx-users/README.md ("Users, groups, queues and pickups"), and the one
-- cascade that every delete of a user, a group or a queue runs in its own atomic call. Loaded
-- after the prelude and before the resources' files of the xws_ipbx_users library.
--
-- The cascade keys, in this order, wherever a function takes them (ipbx_refs_keys):
--   pickup:rows  pickup:target  ver:pickup  user:dialaction  dialaction:target  user:groups
--   group:members  ver:groups  user:queues  queue:members  ver:queues  ver:users  user:extra
--   funckey:target

local IPBX_REFS_NKEYS = 14

-- the cascade keys as a table, from keys[first] .. keys[first + 13]
local function ipbx_refs_keys(keys, first)
    local names = {'pickup_rows', 'pickup_target', 'ver_pickup', 'user_dialaction',
                   'dialaction_target', 'user_groups', 'group_members', 'ver_groups',
                   'user_queues', 'queue_members', 'ver_queues', 'ver_users', 'user_extra',
                   'funckey_target'}
    local r = {}
    for i, n in ipairs(names) do
        r[n] = keys[first + i - 1]
    end
    return r
end

-- a stored msgpack table, or {} when absent or unreadable
local function ipbx_refs_unpack(blob)
    if not blob then
        return {}
    end
    local ok, t = pcall(cmsgpack.unpack, blob)
    if ok and type(t) == 'table' then
        return t
    end
    return {}
end

-- the ids of a "id,id,..." list
local function ipbx_refs_split(s)
    local out = {}
    for x in string.gmatch(s or '', '[^,]+') do
        out[#out + 1] = x
    end
    return out
end

-- The dialaction that replaces one pointing at a removed object.
local function ipbx_refs_none()
    return {actiontype = 'none', action = '', actionarg1 = '', actionarg2 = ''}
end

-- removes the pickup rows that name kind/id; 1 when a row went
local function ipbx_refs_forget_pickups(r, kind, id)
    local target = kind .. ':' .. id
    local pids = ipbx_refs_split(redis.call('HGET', r.pickup_target, target))
    for _, pid in ipairs(pids) do
        local rows, kept = ipbx_refs_unpack(redis.call('HGET', r.pickup_rows, pid)), {}
        for _, row in ipairs(rows) do
            if not (row.membertype == kind and tostring(row.memberid) == id) then
                kept[#kept + 1] = row
            end
        end
        redis.call('HSET', r.pickup_rows, pid, cmsgpack.pack(kept))
    end
    redis.call('HDEL', r.pickup_target, target)
    return #pids > 0 and 1 or 0
end

-- turns every dialaction of another user that points at kind/id into none; 1 when one changed
local function ipbx_refs_forget_dialactions(r, kind, id)
    local target = kind .. ':' .. id
    local uids = ipbx_refs_split(redis.call('HGET', r.dialaction_target, target))
    for _, uid in ipairs(uids) do
        local events = ipbx_refs_unpack(redis.call('HGET', r.user_dialaction, uid))
        for event, a in pairs(events) do
            if type(a) == 'table' and a.actiontype == kind and tostring(a.actionarg1) == id then
                events[event] = ipbx_refs_none()
            end
        end
        redis.call('HSET', r.user_dialaction, uid, cmsgpack.pack(events))
    end
    redis.call('HDEL', r.dialaction_target, target)
    return #uids > 0 and 1 or 0
end

-- the set of "<kind>:<id>" targets of the function keys of a user:extra record (keys of type
-- user, group or queue: their typeval is the id)
local function ipbx_refs_funckey_targets(blob)
    local t = {}
    local keys = ipbx_refs_unpack(blob).phonefunckey
    for _, fk in ipairs(type(keys) == 'table' and keys or {}) do
        if type(fk) == 'table' and (fk.type == 'user' or fk.type == 'group' or fk.type == 'queue') then
            t[fk.type .. ':' .. tostring(fk.typeval)] = true
        end
    end
    return t
end

-- removes the function keys of users that name kind/id (they have no "none" form); 1 when one went
local function ipbx_refs_forget_funckeys(r, kind, id)
    local target = kind .. ':' .. id
    local uids = ipbx_refs_split(redis.call('HGET', r.funckey_target, target))
    for _, uid in ipairs(uids) do
        local blob = redis.call('HGET', r.user_extra, uid)
        local extra = ipbx_refs_unpack(blob)
        if blob and type(extra.phonefunckey) == 'table' then
            local kept = {}
            for _, fk in ipairs(extra.phonefunckey) do
                if not (type(fk) == 'table' and fk.type == kind and tostring(fk.typeval) == id) then
                    kept[#kept + 1] = fk
                end
            end
            extra.phonefunckey = kept
            redis.call('HSET', r.user_extra, uid, cmsgpack.pack(extra))
        end
    end
    redis.call('HDEL', r.funckey_target, target)
    return #uids > 0 and 1 or 0
end

-- drops user uid's own function keys (user:extra) and their entries in funckey:target
local function ipbx_refs_forget_user_funckeys(r, uid)
    for t in pairs(ipbx_refs_funckey_targets(redis.call('HGET', r.user_extra, uid))) do
        xws_lookup_edit(r.funckey_target, t, uid, false)
    end
    redis.call('HDEL', r.user_extra, uid)
end

-- drops the memberships of group (queue) id: its members' maps lose it
local function ipbx_refs_forget_members(r, userkey, memberskey, id)
    local uids = ipbx_refs_split(redis.call('HGET', r[memberskey], id))
    for _, uid in ipairs(uids) do
        local m = ipbx_refs_unpack(redis.call('HGET', r[userkey], uid))
        m[id] = nil
        if next(m) == nil then
            redis.call('HDEL', r[userkey], uid)
        else
            redis.call('HSET', r[userkey], uid, cmsgpack.pack(m))
        end
    end
    redis.call('HDEL', r[memberskey], id)
    return #uids > 0 and 1 or 0
end

-- drops user uid's own memberships (the groups' and queues' member lists lose it)
local function ipbx_refs_forget_user_memberships(r, userkey, memberskey, verkey, uid)
    local m = ipbx_refs_unpack(redis.call('HGET', r[userkey], uid))
    local any = false
    for gid in pairs(m) do
        xws_lookup_edit(r[memberskey], tostring(gid), uid, false)
        any = true
    end
    redis.call('HDEL', r[userkey], uid)
    if any then
        xws_bump(r[verkey])
    end
end

-- drops user uid's own dialactions and their entries in dialaction:target
local function ipbx_refs_forget_user_dialactions(r, uid)
    local events = ipbx_refs_unpack(redis.call('HGET', r.user_dialaction, uid))
    for _, a in pairs(events) do
        if type(a) == 'table' and (a.actiontype == 'user' or a.actiontype == 'group' or
                                   a.actiontype == 'queue') then
            xws_lookup_edit(r.dialaction_target, a.actiontype .. ':' .. tostring(a.actionarg1),
                            uid, false)
        end
    end
    redis.call('HDEL', r.user_dialaction, uid)
end

-- Removes every reference to the object kind/id ('user', 'group' or 'queue'; id a string) in
-- the caller's atomic call, after the caller has decided to delete it: the pickup rows naming it,
-- the dialactions of users pointing at it (they become none), the function keys of users naming
-- it (they go), its memberships (of a group or queue: every member's; of a user: its own, its own
-- dialactions and its own function keys with its user:extra record). Bumps the version keys of
-- what changed (ver:pickup, ver:users, ver:groups / ver:queues). The object's own record is the
-- caller's business.
local function ipbx_refs_forget(r, kind, id)
    id = tostring(id)
    if ipbx_refs_forget_pickups(r, kind, id) == 1 then
        xws_bump(r.ver_pickup)
    end
    if kind == 'user' then
        ipbx_refs_forget_user_funckeys(r, id)
    end
    local users_changed = ipbx_refs_forget_dialactions(r, kind, id) + ipbx_refs_forget_funckeys(r, kind, id)
    if kind == 'group' then
        users_changed = users_changed + ipbx_refs_forget_members(r, 'user_groups', 'group_members', id)
    elseif kind == 'queue' then
        users_changed = users_changed + ipbx_refs_forget_members(r, 'user_queues', 'queue_members', id)
    elseif kind == 'user' then
        ipbx_refs_forget_user_memberships(r, 'user_groups', 'group_members', 'ver_groups', id)
        ipbx_refs_forget_user_memberships(r, 'user_queues', 'queue_members', 'ver_queues', id)
        ipbx_refs_forget_user_dialactions(r, id)
    end
    if users_changed > 0 then
        xws_bump(r.ver_users)
    end
end
