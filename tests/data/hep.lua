-- A small HEP dissector for tshark, written for sipaudit's tests (tests/hep.rs) because
-- the tshark of Debian 12 (4.0) has none. Load with `-X lua_script:tests/data/hep.lua`,
-- then `-d udp.port==9060,hep` / `-d tcp.port==9060,hep` as for a built-in one.
--
-- HEP3: "HEP3", 16-bit total length, then chunks (16-bit vendor, type, length including
-- the 6-byte chunk header). The walk stops at a chunk whose length is below 6 or runs
-- past the packet; vendor-0 chunk 11 is the protocol type (1 = SIP), 15 the payload,
-- which is handed to tshark's SIP dissector when the type is SIP or absent. Several
-- packets per TCP segment, and packets split over segments, are handled with tshark's
-- TCP desegmentation. HEP2 (UDP only): version 2, header length 16 (IPv4) or 40 (IPv6),
-- family, protocol, ports, addresses, then 12 bytes of time and capture id; the payload
-- is the rest.

local hep = Proto("hep", "HEP (sipaudit test dissector)")
local f_version = ProtoField.uint8("hep.version", "Version")
hep.fields = { f_version }
local sip = Dissector.get("sip")

local function hep3_packet(tvb, pinfo, tree, off, total)
  local pos = off + 6
  local stop = off + total
  local ptype = nil
  local poff, plen = nil, nil
  while pos + 6 <= stop do
    local vendor = tvb(pos, 2):uint()
    local kind = tvb(pos + 2, 2):uint()
    local len = tvb(pos + 4, 2):uint()
    if len < 6 or pos + len > stop then
      break
    end
    if vendor == 0 and kind == 11 and len == 7 then
      ptype = tvb(pos + 6, 1):uint()
    elseif vendor == 0 and kind == 15 and len > 6 then
      poff, plen = pos + 6, len - 6
    end
    pos = pos + len
  end
  if poff ~= nil and (ptype == nil or ptype == 1) then
    sip:call(tvb(poff, plen):tvb(), pinfo, tree)
  end
end

local function hep3(tvb, pinfo, tree, tcp)
  local n = tvb:len()
  local off = 0
  while off < n do
    if n - off < 6 then
      if tcp then
        pinfo.desegment_offset = off
        pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
      end
      return n
    end
    if tvb(off, 4):string() ~= "HEP3" then
      return n
    end
    local total = tvb(off + 4, 2):uint()
    if total < 6 then
      return n
    end
    if off + total > n then
      if tcp then
        pinfo.desegment_offset = off
        pinfo.desegment_len = off + total - n
      end
      return n
    end
    tree:add(f_version, 3)
    hep3_packet(tvb, pinfo, tree, off, total)
    off = off + total
  end
  return n
end

function hep.dissector(tvb, pinfo, tree)
  local n = tvb:len()
  local tcp = pinfo.port_type == 2
  if tcp and n < 6 then
    pinfo.desegment_offset = 0
    pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
    return n
  end
  if n >= 4 and tvb(0, 4):string() == "HEP3" then
    return hep3(tvb, pinfo, tree, tcp)
  end
  if not tcp and n > 28 and tvb(0, 1):uint() == 2 then
    local hl = tvb(1, 1):uint()
    if (hl == 16 or hl == 40) and n > hl + 12 then
      tree:add(f_version, 2)
      sip:call(tvb(hl + 12):tvb(), pinfo, tree)
    end
  end
  return n
end

DissectorTable.get("udp.port"):add_for_decode_as(hep)
DissectorTable.get("tcp.port"):add_for_decode_as(hep)
