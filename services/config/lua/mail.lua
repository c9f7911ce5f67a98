-- mail.lua - Redis functions of the `mail` resource (config service).
--
-- config_mail_edit: KEYS[1] write id, KEYS[2] mail:data (string: msgpack map of the settings),
-- KEYS[3] ver:mail; ARGV[1] write id ttl, ARGV[2] the new settings (validated by the handler).
-- Replaces the whole object and bumps the version.
local function mail_edit(keys, args)
    redis.call('SET', keys[2], args[2])
    redis.call('INCR', keys[3])
    return {200}
end

xws_register_function('config_mail_edit', function(keys, args)
    return xws_write(keys, args, mail_edit)
end)
