-- prelude.lua - shared by the function library of every service (prepended at build time).
--
-- Conventions of a write function (see svc_ctx.h, svc_write):
--   KEYS[1] = the write-id key (<prefix>wid:<rid>), ARGV[1] = "<ttl in seconds>:<fingerprint of
--   the request>" (hex, may be empty); the function's own keys and arguments follow. It returns an outcome array:
--     {200} / {204} / {200, <msgpack body>}        success
--     {status, code, field, message}               an error answer (PROTOCOL.md section 9)
--     {0, reason}                                  conflict: the caller re-reads and retries
--   xws_write() returns the outcome stored under the write id when the same request was already
--   applied (a retried write after a worker died), else runs the body and stores its outcome,
--   in the same atomic call. Conflicts are not stored. A ttl of 0 stores the outcome without
--   expiry, and only a success (bootstrap writes: a refused item is tried again at the next
--   start). A returned stored outcome has its status raised by 1000, so that the worker can tell
--   the caller that the reply is a replay (svc_outcome_reply takes it off). The outcome is stored
--   with the request's fingerprint: the same write id with another request (another act, params
--   or body) is refused with 400 bad_envelope instead of replaying an unrelated outcome.

local function xws_write(keys, args, body)
    local ttl, fp = string.match(args[1], '^(%d+):(%x*)$')
    if ttl == nil then
        ttl, fp = args[1], ''
    end
    ttl = tonumber(ttl) or 0
    local prev = redis.call('GET', keys[1])
    if prev then
        local rec = cmsgpack.unpack(prev)
        local out = rec
        if type(rec[1]) == 'string' then -- {fingerprint, outcome}
            if fp ~= '' and rec[1] ~= '' and rec[1] ~= fp then
                return {400, 'bad_envelope', '', 'this request id was already used for another request'}
            end
            out = rec[2]
        end
        out[1] = out[1] + 1000
        return out
    end
    local out = body(keys, args)
    if out[1] ~= 0 then
        if ttl > 0 then
            redis.call('SET', keys[1], cmsgpack.pack({fp, out}), 'EX', ttl)
        elseif out[1] < 400 then
            redis.call('SET', keys[1], cmsgpack.pack({fp, out}))
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
