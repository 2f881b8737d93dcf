
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
if holder == false then
  local stored = redis.call('GET', KEYS[2])
  if stored == false or stored == ARGV[4] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
    redis.call('SET', KEYS[2], ARGV[2])
    return 2
  end
  return 'nobody: the lease lapsed and the position moved'
end
return holder
