-- prelude.lua - shared by the function library of every service (prepended at build time).
--
-- Conventions of a write function (see svc_ctx.h, svc_write):
--   KEYS[1] = the write-id key (<prefix>wid:<rid>), ARGV[1] = its ttl in seconds; the function's
--   own keys and arguments follow. It returns an outcome array:
--     {200} / {204} / {200, <msgpack body>}        success
--     {status, code, field, message}               an error answer (PROTOCOL.md section 9)
--     {0, reason}                                  conflict: the caller re-reads and retries
--   xws_write() returns the outcome stored under the write id when the same request was already
--   applied (a retried write after a worker died), else runs the body and stores its outcome,
--   in the same atomic call. Conflicts are not stored. A ttl of 0 stores the outcome without
--   expiry (bootstrap writes). A returned stored outcome has its status raised by 1000, so that
--   the worker can tell the caller that the reply is a replay (svc_outcome_reply takes it off).

local function xws_write(keys, args, body)
    local prev = redis.call('GET', keys[1])
    if prev then
        local out = cmsgpack.unpack(prev)
        out[1] = out[1] + 1000
        return out
    end
    local out = body(keys, args)
    if out[1] ~= 0 then
        local ttl = tonumber(args[1])
        if ttl > 0 then
            redis.call('SET', keys[1], cmsgpack.pack(out), 'EX', ttl)
        else
            redis.call('SET', keys[1], cmsgpack.pack(out))
        end
    end
    return out
end

-- an error outcome
local function xws_fail(status, code, field, message)
    return {status, code, field, message}
end

-- bumps the version counter of a resource (every write does, for ETags)
local function xws_bump(verkey)
    return redis.call('INCR', verkey)
end
