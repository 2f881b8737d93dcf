
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return 1
end
if holder == false then
  return 'nobody'
end
return holder
