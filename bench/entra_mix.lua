-- Entra-shaped SCIM traffic for wrk (bench/soak.py runs it; `make soak`).
--
-- Each request is drawn from a weighted mix of what Microsoft Entra ID sends during provisioning
-- cycles, in both its default form and its aadOptscim062020 form (tests/fixtures/entra):
--   creates with a unique userName (run nonce, thread, counter), user PATCHes (capitalised ops,
--   string booleans, pathless values with dotted keys / lowercase ops, real booleans, paths),
--   filtered lookups (userName eq, a test-connection GUID that matches nothing, externalId eq,
--   Group displayName eq with excludedAttributes=members), and group member add / removal (both
--   removal forms).
-- PATCH and member targets are the users and groups soak.py created in its warm-up (SOAK_POOL, a
-- Lua file returning {users = {...}, groups = {...}}) plus the users this thread created earlier
-- in the run (ids read from the 201 answers).
-- done() prints one line `SOAK_RESULT {json}`: the status histogram, requests per kind, wrk's
-- error counts and latency percentiles (microseconds).

local prefix = "/api/scim/v2"
local token = os.getenv("SOAK_TOKEN") or "local-dev-token"
local run = os.getenv("SOAK_RUN") or tostring(os.time())
local pool_path = os.getenv("SOAK_POOL")

-- kind, weight (percent)
local mix = {
  { "create_user", 18 },
  { "patch_user_default", 12 },   -- "Replace", "False", pathless dotted keys
  { "patch_user_flag", 8 },       -- "replace", false, path; pathless with dotted keys
  { "get_username", 16 },         -- a user created earlier
  { "get_username_missing", 6 },  -- Entra's test connection: a random GUID
  { "get_externalid", 8 },
  { "get_group_displayname", 6 }, -- with excludedAttributes=members
  { "group_add", 12 },            -- "Add" members, "$ref": null
  { "group_remove_default", 7 },  -- "Remove" path members, value list
  { "group_remove_flag", 7 },     -- remove members[value eq "..."]
}

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local function guid()
  return string.format("%08x-%04x-4%03x-%04x-%012x", math.random(0, 0x7fffffff), math.random(0, 0xffff),
    math.random(0, 0xfff), math.random(0x8000, 0xbfff), math.random(0, 0x7fffffff) * 0x10000 + math.random(0, 0xffff))
end

function init(args)
  math.randomseed(os.time() + tid * 7919)
  local pool = dofile(pool_path)
  users, groups = pool.users, pool.groups
  created, created_n, created_max = {}, 0, 512
  statuses, kinds, seq = {}, {}, 0
  -- ListResponses with / without a resource; answers that name the upstream (its authority, Omni's
  -- system attributes): the edge rewrites and strips those, so `leak` must stay 0
  lookups = { hit = 0, miss = 0, leak = 0 }
  headers_json = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/scim+json",
  }
  headers_get = { ["Authorization"] = "Bearer " .. token }
  total_weight = 0
  for _, m in ipairs(mix) do total_weight = total_weight + m[2] end
end

local function pick(list) return list[math.random(1, #list)] end

-- a user to act on: one created by this thread in this run (when there are), else a warm-up one
local function some_user()
  if created_n > 0 and math.random() < 0.5 then
    return created[math.random(1, math.min(created_n, created_max))]
  end
  return pick(users)
end

local function patch(path, body)
  return wrk.format("PATCH", prefix .. path, headers_json, body)
end

local builders = {}

function builders.create_user()
  seq = seq + 1
  local name = string.format("soak-%s-t%d-%d@example.com", run, tid, seq)
  local body = string.format(
    '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],'
    .. '"externalId":"%s","userName":"%s","active":true,"displayName":"Soak User %d",'
    .. '"emails":[{"primary":true,"type":"work","value":"%s"}],"meta":{"resourceType":"User"},'
    .. '"name":{"formatted":"Soak User","familyName":"User","givenName":"Soak"},"roles":[],'
    .. '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"R&D"}',
    guid(), name, seq, name)
  return wrk.format("POST", prefix .. "/Users", headers_json, body)
end

function builders.patch_user_default()
  local u = some_user()
  local active = (math.random() < 0.5) and "False" or "True"
  return patch("/Users/" .. u.id, string.format(
    '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":['
    .. '{"op":"Replace","path":"active","value":"%s"},'
    .. '{"op":"Replace","value":{"displayName":"Soak %d","name.givenName":"Given%d","name.familyName":"Family"}}]}',
    active, math.random(1, 1e6), math.random(1, 1e6)))
end

function builders.patch_user_flag()
  local u = some_user()
  local active = (math.random() < 0.5) and "false" or "true"
  return patch("/Users/" .. u.id, string.format(
    '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":['
    .. '{"op":"replace","path":"active","value":%s},'
    .. '{"op":"replace","path":"emails[type eq \\"work\\"].value","value":"%s"},'
    .. '{"op":"replace","value":{"displayName":"Flag %d","name.givenName":"Kkom",'
    .. '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"%d"}}]}',
    active, u.userName, math.random(1, 1e6), math.random(1, 1e6)))
end

local function get_filtered(resource, filter, extra)
  return wrk.format("GET", prefix .. "/" .. resource .. "?filter=" .. urlencode(filter) .. (extra or ""), headers_get)
end

function builders.get_username()
  return get_filtered("Users", string.format('userName eq "%s"', some_user().userName))
end

function builders.get_username_missing()
  return get_filtered("Users", string.format('userName eq "%s"', guid()))
end

-- the omni profile does not pass externalId, so answers carry none: query the warm-up users' ones
function builders.get_externalid()
  return get_filtered("Users", string.format('externalId eq "%s"', pick(users).externalId))
end

function builders.get_group_displayname()
  return get_filtered("Groups", string.format('displayName eq "%s"', pick(groups).displayName), "&excludedAttributes=members")
end

function builders.group_add()
  return patch("/Groups/" .. pick(groups).id, string.format(
    '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"$ref":null,"value":"%s"}]}]}',
    some_user().id))
end

function builders.group_remove_default()
  return patch("/Groups/" .. pick(groups).id, string.format(
    '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":"%s"},{"value":"%s"}]}]}',
    some_user().id, some_user().id))
end

function builders.group_remove_flag()
  return patch("/Groups/" .. pick(groups).id, string.format(
    '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \\"%s\\"]"}]}',
    some_user().id))
end

function request()
  local r = math.random(1, total_weight)
  local kind
  for _, m in ipairs(mix) do
    r = r - m[2]
    if r <= 0 then kind = m[1] break end
  end
  kinds[kind] = (kinds[kind] or 0) + 1
  return builders[kind]()
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if body and (body:find("scim-upstream", 1, true) or body:find("omni_", 1, true)) then
    lookups.leak = lookups.leak + 1
  end
  if status == 200 and body and body:find('"totalResults":', 1, true) then
    if body:find('"totalResults":0', 1, true) then lookups.miss = lookups.miss + 1 else lookups.hit = lookups.hit + 1 end
  end
  if status == 201 and body then
    local id = body:match('"id"%s*:%s*"([^"]+)"')
    local userName = body:match('"userName"%s*:%s*"([^"]+)"')
    if id and userName then
      created_n = created_n + 1
      created[(created_n - 1) % created_max + 1] = { id = id, userName = userName }
    end
  end
end

local function json_map(t)
  local parts = {}
  for k, v in pairs(t) do table.insert(parts, string.format('"%s":%d', k, v)) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function merge(into, from)
  for k, v in pairs(from or {}) do into[k] = (into[k] or 0) + v end
end

function done(summary, latency, requests)
  local all_statuses, all_kinds, all_lookups = {}, {}, {}
  for _, thread in ipairs(threads) do
    merge(all_statuses, thread:get("statuses"))
    merge(all_kinds, thread:get("kinds"))
    merge(all_lookups, thread:get("lookups"))
  end
  local e = summary.errors
  local pct = {}
  for _, p in ipairs({ 50, 75, 90, 99, 99.9 }) do
    table.insert(pct, string.format('"p%s":%d', tostring(p), latency:percentile(p)))
  end
  io.write(string.format(
    'SOAK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"statuses":%s,"kinds":%s,"lookups":%s,'
    .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
    .. '"latency_us":{%s,"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes, json_map(all_statuses), json_map(all_kinds), json_map(all_lookups),
    e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(pct, ","), latency.min, latency.max, latency.mean, latency.stdev))
end
