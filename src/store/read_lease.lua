
local holder = redis.call('GET', KEYS[1])
if holder == false then
  return 0
end
return {holder, redis.call('PTTL', KEYS[1])}
