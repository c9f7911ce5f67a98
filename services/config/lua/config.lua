-- config.lua - the Redis functions of the config service (library xws_config).
-- Every key a function touches comes in KEYS; the first key of a write is its write id (see
-- the prelude). Records are msgpack maps written by the service (svc_record_pack_stored).

------------------------------------------------------------------------------------------------
-- entity
-- KEYS of writes: wid, seq (<p>entity:seq), data (<p>entity:data), name (<p>entity:name),
--                 refs (<p>entity:refs), ver (<p>ver:entity)

-- ARGV: ttl, name, record
redis.register_function('config_entity_add', function(keys, args)
    return xws_write(keys, args, function(k, a)
        local seq, data, names, refs, ver = k[2], k[3], k[4], k[5], k[6]
        local name, rec = a[2], a[3]
        if redis.call('HEXISTS', names, name) == 1 then
            return xws_fail(400, 'already_exists', 'name', 'an entity named ' .. name .. ' already exists')
        end
        local id = redis.call('INCR', seq)
        redis.call('HSET', data, id, rec)
        redis.call('HSET', names, name, id)
        xws_bump(ver)
        return {200}
    end)
end)

-- ARGV: ttl, id, expected old record, new record, old name, new name
-- Compare-and-set: {0, 'changed'} when the stored record is no longer the one the worker read.
redis.register_function('config_entity_edit', function(keys, args)
    return xws_write(keys, args, function(k, a)
        local data, names, ver = k[3], k[4], k[6]
        local id, old, new, oldname, newname = a[2], a[3], a[4], a[5], a[6]
        local cur = redis.call('HGET', data, id)
        if not cur then
            return xws_fail(404, 'not_found', 'id', 'no entity has id ' .. id)
        end
        if cur ~= old then
            return {0, 'changed'}
        end
        if newname ~= oldname then
            local other = redis.call('HGET', names, newname)
            if other and other ~= id then
                return xws_fail(400, 'already_exists', 'name', 'an entity named ' .. newname .. ' already exists')
            end
            if redis.call('HGET', names, oldname) == id then
                redis.call('HDEL', names, oldname)
            end
            redis.call('HSET', names, newname, id)
        end
        redis.call('HSET', data, id, new)
        xws_bump(ver)
        return {200}
    end)
end)

-- removes entity id (record cur) and its name
local function entity_remove(data, names, refs, id, cur)
    local ok, rec = pcall(cmsgpack.unpack, cur)
    if ok and type(rec) == 'table' and type(rec.name) == 'string' and redis.call('HGET', names, rec.name) == id then
        redis.call('HDEL', names, rec.name)
    end
    redis.call('HDEL', data, id)
    redis.call('HDEL', refs, id)
end

-- ARGV: ttl, id
redis.register_function('config_entity_delete', function(keys, args)
    return xws_write(keys, args, function(k, a)
        local data, names, refs, ver = k[3], k[4], k[5], k[6]
        local id = a[2]
        local cur = redis.call('HGET', data, id)
        if not cur then
            return xws_fail(404, 'not_found', 'id', 'no entity has id ' .. id)
        end
        local n = tonumber(redis.call('HGET', refs, id) or '0') or 0
        if n > 0 then
            return xws_fail(405, 'in_use', 'id', 'entity ' .. id .. ' is still used by ' .. n .. ' context(s) or user(s)')
        end
        entity_remove(data, names, refs, id, cur)
        xws_bump(ver)
        return {200}
    end)
end)

-- ARGV: ttl. Deletes every entity nothing refers to: {204} when there was none at all.
redis.register_function('config_entity_deleteall', function(keys, args)
    return xws_write(keys, args, function(k, a)
        local data, names, refs, ver = k[3], k[4], k[5], k[6]
        local all = redis.call('HGETALL', data)
        if #all == 0 then
            return {204}
        end
        local deleted = 0
        for i = 1, #all, 2 do
            local id = all[i]
            local n = tonumber(redis.call('HGET', refs, id) or '0') or 0
            if n <= 0 then
                entity_remove(data, names, refs, id, all[i + 1])
                deleted = deleted + 1
            end
        end
        if deleted > 0 then
            xws_bump(ver)
        end
        return {200}
    end)
end)

------------------------------------------------------------------------------------------------
-- account (web-service accounts; written by the command-line tool)
-- KEYS of writes: wid, data (<p>account:data, name -> record), login (<p>account:login,
--                 login -> name), ver (<p>ver:account)

-- the login of a stored record, or ''
local function account_login(blob)
    local ok, rec = pcall(cmsgpack.unpack, blob)
    if ok and type(rec) == 'table' and type(rec.login) == 'string' then
        return rec.login
    end
    return ''
end

-- ARGV: ttl, name, record, login, expected old record ('' to create: the name must be free)
redis.register_function('config_account_put', function(keys, args)
    return xws_write(keys, args, function(k, a)
        local data, logins, ver = k[2], k[3], k[4]
        local name, rec, login, old = a[2], a[3], a[4], a[5]
        local cur = redis.call('HGET', data, name)
        if old == '' and cur then
            return xws_fail(400, 'already_exists', 'name', 'an account named ' .. name .. ' already exists')
        end
        if old ~= '' and not cur then
            return xws_fail(404, 'not_found', 'name', 'no account is named ' .. name)
        end
        if old ~= '' and cur ~= old then
            return {0, 'changed'}
        end
        if login ~= '' then
            local owner = redis.call('HGET', logins, login)
            if owner and owner ~= name then
                return xws_fail(400, 'already_exists', 'login', 'the login ' .. login .. ' belongs to account ' .. owner)
            end
        end
        if cur then
            local oldlogin = account_login(cur)
            if oldlogin ~= '' and oldlogin ~= login and redis.call('HGET', logins, oldlogin) == name then
                redis.call('HDEL', logins, oldlogin)
            end
        end
        redis.call('HSET', data, name, rec)
        if login ~= '' then
            redis.call('HSET', logins, login, name)
        end
        xws_bump(ver)
        return {200}
    end)
end)

-- ARGV: ttl, name
redis.register_function('config_account_remove', function(keys, args)
    return xws_write(keys, args, function(k, a)
        local data, logins, ver = k[2], k[3], k[4]
        local name = a[2]
        local cur = redis.call('HGET', data, name)
        if not cur then
            return xws_fail(404, 'not_found', 'name', 'no account is named ' .. name)
        end
        local login = account_login(cur)
        if login ~= '' and redis.call('HGET', logins, login) == name then
            redis.call('HDEL', logins, login)
        end
        redis.call('HDEL', data, name)
        xws_bump(ver)
        return {200}
    end)
end)

-- ARGV: ttl, name, record, login. Creates the account only when no account exists at all:
-- {200} created, {204} there were accounts already.
redis.register_function('config_account_ensure', function(keys, args)
    return xws_write(keys, args, function(k, a)
        local data, logins, ver = k[2], k[3], k[4]
        if redis.call('HLEN', data) > 0 then
            return {204}
        end
        redis.call('HSET', data, a[2], a[3])
        if a[4] ~= '' then
            redis.call('HSET', logins, a[4], a[2])
        end
        xws_bump(ver)
        return {200}
    end)
end)

-- KEYS: data, ver. Returns {version, record, record, ...} read atomically.
redis.register_function{function_name = 'config_account_all', flags = {'no-writes'}, callback = function(keys, args)
    local out = {tonumber(redis.call('GET', keys[2]) or '0')}
    for _, v in ipairs(redis.call('HVALS', keys[1])) do
        out[#out + 1] = v
    end
    return out
end}

-- KEYS: login, data; ARGV: login. The record of the account with that login, or nil.
redis.register_function{function_name = 'config_account_by_login', flags = {'no-writes'}, callback = function(keys, args)
    local name = redis.call('HGET', keys[1], args[1])
    if not name then
        return false
    end
    return redis.call('HGET', keys[2], name)
end}
