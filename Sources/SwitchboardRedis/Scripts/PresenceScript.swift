/// Presence and node liveness, atomically (PROTOCOL.md §6).
///
/// `EVALSHA sha 0 prefix op node now ...`; the operations:
/// - `register user`: the user's live session is on `node`; answers `{previous node or "", call fields}`
///   (the call the user is in, so the node can mirror it).
/// - `restore user`: as `register`, after a Redis reconnect, but a newer session elsewhere wins:
///   answers the node that holds the user when that is not `node` (the caller then closes its session).
/// - `unregister user`: removes the entry if it still names `node`; keeps the user in the node's set
///   while they are in a call.
/// - `beat deadline`: records `node`'s heartbeat at `now`, then reaps every node whose last heartbeat
///   is older than `deadline`: their users leave `presence`, and the users left in a call without a
///   session anywhere are answered (the caller ends their calls after the reconnect grace). The first
///   element of the answer is 1 when `node` itself was missing from `nodes` (reaped, or Redis emptied).
/// - `reset`: `node` starts: what an earlier run of the same node id left is reaped as above.
/// - `leave`: `node` shuts down: its users leave `presence`, and its heartbeat is set to 0 so the
///   next `beat` of another node reaps it (and ends the calls of users who do not come back).
enum PresenceScript {
    static let source = #"""
        local prefix, op, node, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
        local presence = prefix .. 'presence'
        local nodes = prefix .. 'nodes'
        local function users_of(n) return prefix .. 'node:' .. n .. ':users' end
        local function call_of(user)
          local id = redis.call('GET', prefix .. 'user-call:' .. user)
          if not id then return {} end
          local fields = redis.call('HMGET', prefix .. 'call:' .. id,
            'caller', 'callee', 'call_type', 'state', 'created_at', 'started_at')
          if not fields[1] then return {} end
          return {id, fields[1], fields[2], fields[3], fields[4], fields[5], fields[6] or ''}
        end
        -- Removes the users of a dead node from presence; collects those left in a call.
        local function reap(dead, orphans)
          for _, user in ipairs(redis.call('SMEMBERS', users_of(dead))) do
            if redis.call('HGET', presence, user) == dead then
              redis.call('HDEL', presence, user)
            end
            if redis.call('HEXISTS', presence, user) == 0
              and redis.call('EXISTS', prefix .. 'user-call:' .. user) == 1 then
              table.insert(orphans, user)
            end
          end
          redis.call('DEL', users_of(dead))
        end

        if op == 'register' or op == 'restore' then
          local user = ARGV[5]
          local previous = redis.call('HGET', presence, user)
          if op == 'restore' and previous and previous ~= node then
            return {previous, {}}
          end
          redis.call('HSET', presence, user, node)
          redis.call('SADD', users_of(node), user)
          if previous and previous ~= node then
            redis.call('SREM', users_of(previous), user)
          end
          return {previous or '', call_of(user)}
        elseif op == 'unregister' then
          local user = ARGV[5]
          -- A user left in a call stays in the node's set: should this node die before the reconnect grace
          -- ends the call, the reaper finds them there.
          if redis.call('EXISTS', prefix .. 'user-call:' .. user) == 0 then
            redis.call('SREM', users_of(node), user)
          end
          if redis.call('HGET', presence, user) == node then
            redis.call('HDEL', presence, user)
            return 1
          end
          return 0
        elseif op == 'beat' then
          local deadline = tonumber(ARGV[5])
          -- 1 when the node was not there: reaped while it stalled, or Redis lost it. Its users must register again.
          local missing = redis.call('ZADD', nodes, now, node)
          local orphans = {missing}
          for _, dead in ipairs(redis.call('ZRANGEBYSCORE', nodes, '-inf', '(' .. deadline)) do
            reap(dead, orphans)
            redis.call('ZREM', nodes, dead)
          end
          return orphans
        elseif op == 'reset' then
          local orphans = {}
          reap(node, orphans)
          return orphans
        elseif op == 'leave' then
          for _, user in ipairs(redis.call('SMEMBERS', users_of(node))) do
            if redis.call('HGET', presence, user) == node then
              redis.call('HDEL', presence, user)
            end
          end
          redis.call('ZADD', nodes, 0, node)
          return 1
        end
        return redis.error_reply('unknown presence op ' .. tostring(op))
        """#
}
