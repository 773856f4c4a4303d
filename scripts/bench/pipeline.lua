-- wrk script for W3: every write carries 16 pipelined GET /access requests.
init = function(args)
    local r = {}
    for i = 1, 16 do
        r[i] = wrk.format(nil, "/access")
    end
    req = table.concat(r)
end

request = function()
    return req
end
