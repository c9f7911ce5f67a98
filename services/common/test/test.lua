-- test.lua - the function library of the worker library's self-test.

-- KEYS: wid, counter, ver; ARGV: ttl, fail ("1": answer an error, "2": a compare-and-set conflict)
xws_register_function('svctest_bump', function(keys, args)
    return xws_write(keys, args, function(k, a)
        if a[2] == '1' then
            return xws_fail(400, 'invalid_value', 'x', 'asked to fail')
        end
        if a[2] == '2' then
            return {0, 'changed'}
        end
        local n = redis.call('INCR', k[2])
        xws_bump(k[3])
        return {200, cmsgpack.pack(n)}
    end)
end)

-- the common record functions (svctest_records_put, _del, _delall)
xws_register_records('svctest')

-- KEYS: wid, numbers, numidx, ctxdata; ARGV: ttl, "take"/"release", context, number, type, owner
xws_register_function('svctest_number', function(keys, args)
    return xws_write(keys, args, function(k, a)
        if a[2] == 'take' then
            local err = xws_number_check(k[2], k[4], a[3], a[4], a[5], a[6], 'number')
            if err then
                return err
            end
            xws_number_take(k[2], k[3], a[4], a[5], a[6])
        else
            xws_number_release(k[2], k[3], a[4], a[5], a[6])
        end
        return {200}
    end)
end)
