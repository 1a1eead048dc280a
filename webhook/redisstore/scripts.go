package redisstore

import "github.com/redis/go-redis/v9"

// The value of a key says what it is:
//
//	c:<token>  claimed by the holder of token, for PX lease
//	d:<nonce>  done, for PX keep; nonce identifies the Complete call
//
// Each script touches exactly one key (KEYS[1]), so it runs on Redis
// Cluster. The scripts are written so that a call go-redis or the store
// runs again after a lost reply (the connection broke after Redis ran it)
// answers as the first run did, instead of reporting a lease it just took
// or completed as lost; Release is the exception (see the package doc).

// claimScript: SET NX PX, and when the key exists, what holds it. Returns
// 1 Claimed, 2 InProgress, 3 Done, 0 a value this store did not write.
// (A key cannot expire between the SET and the GET, time stands still in a
// script; the nil branch answers InProgress, which fails closed, should a
// server behave otherwise.) ARGV: value ("c:"..token), lease in ms.
var claimScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  return 1
elseif not v then
  return 2
end
local kind = string.sub(v, 1, 2)
if kind == 'c:' then
  return 2
elseif kind == 'd:' then
  return 3
end
return 0
`)

// extendScript: PEXPIRE if held by the token. Returns 1, or 0 when the
// lease is lost. ARGV: value ("c:"..token), lease in ms.
var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// completeScript: replace the claim by a done marker kept for keep.
// Returns 1, or 0 when the lease is lost. ARGV: claim value ("c:"..token),
// done value ("d:"..nonce), keep in ms.
var completeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or v == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`)

// releaseScript: DEL if held by the token. Returns 1, or 0 when the lease
// is lost. ARGV: value ("c:"..token).
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
