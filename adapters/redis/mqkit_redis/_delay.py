"""Delayed send, emulated with a sorted set and a mover script.

A message sent with ``delay`` is not appended to the stream: ``ZADD <stream>:mqkit-delayed
<due ms> <fields>`` keeps it aside. Consumers of the topic (any group) run ``MOVE_DUE``
with each look at their retry schedule (before blocking, and at most every 50 ms while
busy): it appends every due message to the stream (``XADD NOMKSTREAM``, with the
topic's trimming) and removes it from the set, atomically. A delayed message is thus
never delivered early; it is late by up to one ``block_slice`` when consumers are idle,
and waits while no consumer of the topic runs. It lands at the stream's end when due
(ordering is by due time, not send time), with a new entry id.
"""

from __future__ import annotations

import hashlib

__all__ = ["MOVE_DUE", "MOVE_DUE_SHA"]

# KEYS[1] stream, KEYS[2] delayed set; ARGV[1] now (ms), ARGV[2] most to move,
# ARGV[3..] XADD trimming arguments. Returns how many were moved.
MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0,
                       tonumber(ARGV[2]))
if #due == 0 then return 0 end
local head = {'XADD', KEYS[1], 'NOMKSTREAM'}
for i = 3, #ARGV do head[#head + 1] = ARGV[i] end
head[#head + 1] = '*'
for _, member in ipairs(due) do
  local args, pos = {}, 1
  for i = 1, #head do args[i] = head[i] end
  while pos <= #member do
    local colon = string.find(member, ':', pos, true)
    local n = tonumber(string.sub(member, pos, colon - 1))
    args[#args + 1] = string.sub(member, colon + 1, colon + n)
    pos = colon + n + 1
  end
  redis.call(unpack(args))
  redis.call('ZREM', KEYS[2], member)
end
return #due
"""

MOVE_DUE_SHA = hashlib.sha1(MOVE_DUE.encode()).hexdigest()
