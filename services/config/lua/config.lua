-- config.lua - the Redis functions of the config service (library xws_config).
-- Every key a function touches comes in KEYS; the first key of a write is its write id (see
-- the prelude). Records are msgpack maps written by the service (svc_record_pack_stored).

------------------------------------------------------------------------------------------------
-- records (entity): config_records_put, _del and _delall, the common record functions of the
-- prelude (svc_index.h); entity.c declares the keys, the unique name index and the reference
-- counts (entity:refs) they maintain.

xws_register_records('config')

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
xws_register_function('config_account_put', function(keys, args)
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
xws_register_function('config_account_remove', function(keys, args)
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
xws_register_function('config_account_ensure', function(keys, args)
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
xws_register_function_ro('config_account_all', function(keys, args)
    local out = {tonumber(redis.call('GET', keys[2]) or '0')}
    for _, v in ipairs(redis.call('HVALS', keys[1])) do
        out[#out + 1] = v
    end
    return out
end)

-- KEYS: login, data; ARGV: login. The record of the account with that login, or nil.
xws_register_function_ro('config_account_by_login', function(keys, args)
    local name = redis.call('HGET', keys[1], args[1])
    if not name then
        return false
    end
    return redis.call('HGET', keys[2], name)
end)
