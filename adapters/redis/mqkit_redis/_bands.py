"""Priority emulated with one stream per band: the two server-side scripts (sans-I/O).

A message sent with priority p in 1..9 goes to the band stream ``<stream>:mqkit-p<p>``
(``Names.band``); priority 0 or none to the plain stream, which plain clients keep
reading as before. A band stream exists only once something was sent at its level:

* ``ENSURE_BAND`` makes it, atomically, with every group of the plain stream created on
  it from ``0`` (each group then sees every entry of the band, all sent after the group
  was created on the plain stream). ``create_group`` creates a group on the plain stream
  and then on each band that exists, with the same start; whichever of the two runs
  second finds the other's work done (``BUSYGROUP`` is ignored), so a group is never
  missing from a band and never starts it late.
* ``READ_BANDS`` is the strict-priority read: ``XREADGROUP ... >`` on each given stream,
  highest band first, asking each only for what is still missing, in one round trip and
  without reading more than asked (nothing is left leased unhanded). A stream that fails
  (a band deleted, or made by a plain client without the group) is skipped and named in
  the reply, so the reader looks at the bands again.

Both scripts name every key they touch (``KEYS``).
"""

from __future__ import annotations

import hashlib

__all__ = ["ENSURE_BAND", "ENSURE_BAND_SHA", "READ_BANDS", "READ_BANDS_SHA"]

# KEYS[1] plain stream, KEYS[2] band stream. Returns 0 when the plain stream is not a
# stream (no such topic), 1 when the band exists (made now or before).
ENSURE_BAND = """
if redis.call('TYPE', KEYS[1]).ok ~= 'stream' then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
redis.call('XGROUP', 'CREATE', KEYS[2], 'mqkit-init', '$', 'MKSTREAM')
redis.call('XGROUP', 'DESTROY', KEYS[2], 'mqkit-init')
for _, row in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  redis.call('XGROUP', 'CREATE', KEYS[2], row[2], '0')
end
return 1
"""

# KEYS: the streams, highest priority first; ARGV[1] group, ARGV[2] consumer, ARGV[3]
# most entries in all. Returns {{{key, entries}, ...}, {failed key, ...}}.
READ_BANDS = """
local left = tonumber(ARGV[3])
local out, failed = {}, {}
for _, key in ipairs(KEYS) do
  if left <= 0 then break end
  local r = redis.pcall('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', left,
                        'STREAMS', key, '>')
  if type(r) == 'table' and r.err then
    failed[#failed + 1] = key
  elseif r then
    local entries = r[1][2]
    out[#out + 1] = {key, entries}
    left = left - #entries
  end
end
return {out, failed}
"""


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


ENSURE_BAND_SHA = _sha(ENSURE_BAND)
READ_BANDS_SHA = _sha(READ_BANDS)
