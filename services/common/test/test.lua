-- test.lua - the function library of the worker library's self-test.

-- KEYS: wid, counter, ver; ARGV: ttl, fail ("1": answer an error)
redis.register_function('svctest_bump', function(keys, args)
    return xws_write(keys, args, function(k, a)
        if a[2] == '1' then
            return xws_fail(400, 'invalid_value', 'x', 'asked to fail')
        end
        local n = redis.call('INCR', k[2])
        xws_bump(k[3])
        return {200, cmsgpack.pack(n)}
    end)
end)
