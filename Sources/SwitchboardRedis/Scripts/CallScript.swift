/// Call state for the whole cluster: every transition in one atomic script, so racing transitions
/// (two accepts, accept against hangup) have exactly one winner (PROTOCOL.md §3).
///
/// `EVALSHA sha 0 prefix op now ...`. A call is the hash `call:<id>` (caller, callee, call_type, state,
/// created_at, started_at, connected_at) and, for each party, `user-call:<user>` → id. Replies that carry
/// a call end with its fields `id, caller, callee, call_type, state, created_at, started_at, connected_at`
/// ("" when not started, not connected);
/// `peer node` is the node of the other party's session ("" when offline). The operations:
/// - `invite id caller callee call_type ring_ttl_ms` → `{"ok", callee node, call}` or `{"forbidden"}` (a
///   self-call), `{"duplicate"}`,
///   `{"offline", live}`, `{"busy", live}` (live = "live" when a call with this id exists),
///   `{"glare", callee node, call}` (the callee's ringing invite to the caller, which stands). A ringing
///   call expires after `ring_ttl_ms` should every timer be lost.
/// - `accept|reject|hangup sender recipient id` (id "" = the sender's call) → `{"accepted"|"rejected"|
///   "ended", peer node, call}` or `{"no-call", why}`.
/// - `lookup sender recipient id` → `{"found", peer node, call}` or `{"no-call", why}`.
/// - `connect sender recipient id` (`call-connected`) → `{"connected", "first"|"again", call}` in an
///   active call (the first sets `connected_at`), or `{"no-call", why}`.
/// - `expire id` → `{"ended", "", call}` if the call was still ringing, else `{"none"}`.
/// - `abandon user` → `{"ended", peer node, call}` if the user is in a call and has no session
///   anywhere, else `{"none"}`.
/// - `restore call ring_ttl_ms connected_at` → writes a call a node knows but Redis lost (a restart) unless its
///   parties are in other calls (a ringing one expires as an invite's does); `{"restored"}` or `{"none"}`.
enum CallScript {
    static let source = #"""
        local prefix, op, now = ARGV[1], ARGV[2], ARGV[3]
        local presence = prefix .. 'presence'
        local function call_key(id) return prefix .. 'call:' .. id end
        local function user_key(user) return prefix .. 'user-call:' .. user end
        local function load(id)
          local f = redis.call('HMGET', call_key(id),
            'caller', 'callee', 'call_type', 'state', 'created_at', 'started_at', 'connected_at')
          if not f[1] then return nil end
          return {id, f[1], f[2], f[3], f[4], f[5], f[6] or '', f[7] or ''}
        end
        local function finish(call)
          redis.call('DEL', call_key(call[1]))
          for _, user in ipairs({call[2], call[3]}) do
            if redis.call('GET', user_key(user)) == call[1] then redis.call('DEL', user_key(user)) end
          end
        end
        local function node_of(user) return redis.call('HGET', presence, user) or '' end
        local function reply(outcome, node, call)
          return {outcome, node, call[1], call[2], call[3], call[4], call[5], call[6], call[7], call[8]}
        end

        if op == 'invite' then
          local id, caller, callee, call_type, ttl = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
          if caller == callee then return {'forbidden'} end
          local existing = load(id)
          local live = existing and 'live' or ''
          local callee_node = redis.call('HGET', presence, callee)
          if not callee_node then return {'offline', live} end
          -- Re-sending your own invite is a duplicate; anyone else meeting a live call is told "busy".
          if existing and (existing[2] == caller or existing[3] == caller) then return {'duplicate'} end
          -- Glare: the callee's invite to the caller rings; it stands, and no second call is made.
          local standing_id = redis.call('GET', user_key(caller))
          local standing = standing_id and load(standing_id)
          if standing and standing[5] == 'ringing' and standing[2] == callee and standing[3] == caller then
            return reply('glare', callee_node, standing)
          end
          if redis.call('EXISTS', user_key(caller)) == 1 or redis.call('EXISTS', user_key(callee)) == 1 then
            return {'busy', live}
          end
          if existing then return {'duplicate'} end
          redis.call('HSET', call_key(id), 'caller', caller, 'callee', callee, 'call_type', call_type,
            'state', 'ringing', 'created_at', now)
          redis.call('SET', user_key(caller), id)
          redis.call('SET', user_key(callee), id)
          for _, key in ipairs({call_key(id), user_key(caller), user_key(callee)}) do
            redis.call('PEXPIRE', key, ttl)
          end
          return reply('ok', callee_node, load(id))
        elseif op == 'accept' or op == 'reject' or op == 'hangup' or op == 'lookup' or op == 'connect' then
          local sender, recipient, id = ARGV[4], ARGV[5], ARGV[6]
          if id == '' then id = redis.call('GET', user_key(sender)) end
          local call = id and load(id)
          local peer = call and ((call[2] == sender) and call[3] or call[2])
          if not call or (call[2] ~= sender and call[3] ~= sender) or peer ~= recipient or sender == recipient then
            return {'no-call', ARGV[6] ~= '' and 'no such call for you' or 'no call with ' .. recipient}
          end
          if op == 'lookup' then return reply('found', node_of(peer), call) end
          if op == 'connect' then
            if call[5] ~= 'active' then return {'no-call', 'no active call of yours'} end
            if call[8] ~= '' then return reply('connected', 'again', call) end
            -- Clocks of nodes differ a little: a call connects no earlier than it started.
            redis.call('HSET', call_key(id), 'connected_at', math.max(tonumber(now), tonumber(call[7])))
            return reply('connected', 'first', load(id))
          end
          if op == 'hangup' then
            finish(call)
            return reply('ended', node_of(peer), call)
          end
          if call[5] ~= 'ringing' or sender ~= call[3] then
            return {'no-call', 'no ringing call for you to ' .. op}
          end
          if op == 'reject' then
            finish(call)
            return reply('rejected', node_of(peer), call)
          end
          -- Clocks of nodes differ a little: a call starts no earlier than it was created.
          redis.call('HSET', call_key(id), 'state', 'active', 'started_at', math.max(tonumber(now), tonumber(call[6])))
          for _, key in ipairs({call_key(id), user_key(call[2]), user_key(call[3])}) do
            redis.call('PERSIST', key)
          end
          return reply('accepted', node_of(peer), load(id))
        elseif op == 'expire' then
          local call = load(ARGV[4])
          if not call or call[5] ~= 'ringing' then return {'none'} end
          finish(call)
          return reply('ended', '', call)
        elseif op == 'abandon' then
          local user = ARGV[4]
          if redis.call('HEXISTS', presence, user) == 1 then return {'none'} end
          local id = redis.call('GET', user_key(user))
          local call = id and load(id)
          if not call then return {'none'} end
          finish(call)
          local peer = (call[2] == user) and call[3] or call[2]
          return reply('ended', node_of(peer), call)
        elseif op == 'restore' then
          local id, caller, callee = ARGV[4], ARGV[5], ARGV[6]
          if redis.call('EXISTS', call_key(id)) == 1 then return {'none'} end
          for _, user in ipairs({caller, callee}) do
            local other = redis.call('GET', user_key(user))
            if other and other ~= id then return {'none'} end
          end
          redis.call('HSET', call_key(id), 'caller', caller, 'callee', callee, 'call_type', ARGV[7],
            'state', ARGV[8], 'created_at', ARGV[9])
          if ARGV[10] ~= '' then redis.call('HSET', call_key(id), 'started_at', ARGV[10]) end
          if ARGV[12] and ARGV[12] ~= '' then redis.call('HSET', call_key(id), 'connected_at', ARGV[12]) end
          redis.call('SET', user_key(caller), id)
          redis.call('SET', user_key(callee), id)
          if ARGV[8] == 'ringing' then
            for _, key in ipairs({call_key(id), user_key(caller), user_key(callee)}) do
              redis.call('PEXPIRE', key, ARGV[11])
            end
          end
          return {'restored'}
        end
        return redis.error_reply('unknown call op ' .. tostring(op))
        """#
}
