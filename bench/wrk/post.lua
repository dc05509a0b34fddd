-- POST a GeWe call for accounts named by BENCH_APPID_PATTERN (a string.format
-- pattern taking one integer) with indexes 1..BENCH_APPID_COUNT: in turn when
-- BENCH_ROUND_ROBIN=1, at random otherwise. BENCH_BODY is the JSON body with
-- "%s" where the appId goes and, optionally, a "%d" after it where a number
-- goes that no other request of the run has (for URLs of distinct pictures).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local pattern = os.getenv("BENCH_APPID_PATTERN")
local count = tonumber(os.getenv("BENCH_APPID_COUNT"))
local round_robin = os.getenv("BENCH_ROUND_ROBIN") == "1"
local template = os.getenv("BENCH_BODY")
local headers = {
  ["Content-Type"] = "application/json",
  ["X-GEWE-TOKEN"] = os.getenv("BENCH_TOKEN"),
}
local counter = 0
math.randomseed(math.floor(os.clock() * 1e6) + os.time())

function request()
  local index
  if round_robin then
    index = counter % count + 1
  else
    index = math.random(count)
  end
  counter = counter + 1
  local serial = thread_id * 10000000 + counter
  return wrk.format("POST", wrk.path, headers,
    string.format(template, string.format(pattern, index), serial))
end
