/// Signals kept for users away from their call (PROTOCOL.md §8), atomically against presence.
///
/// `EVALSHA sha 0 prefix op user ...`. A user away from a call has the hash `away:<user>` (`call`: the
/// call's id, `bytes`: what is kept) and the list `kept:<user>` of kept messages (serialized
/// `ChatMessage`s, oldest first); both expire with the reconnect grace from when the user was marked away.
/// The operations:
/// - `away user call_id grace_ms`: marks the user away from the call, unless they are connected (again)
///   somewhere; what was kept for an earlier call goes. Answers 1 when marked, else 0.
/// - `keep user call_id grace_ms max_count max_bytes message`: `{"present", node}` if the user is
///   connected; else, if the user is marked away from that call or, not marked, still a party of it
///   (`user-call:<user>`), keeps the message (marking the user away) and answers `{"kept", displaced...}`:
///   the oldest messages that gave way so that at most `max_count` messages and `max_bytes` bytes are
///   kept (the newest always is); else `{"not-away"}`.
/// - `resume user`: takes what was kept: `{marked ("1" or ""), call fields or {}, {messages...}}`.
/// - `discard user`: forgets what was kept.
enum KeptScript {
    static let source = #"""
        local prefix, op, user = ARGV[1], ARGV[2], ARGV[3]
        local presence = prefix .. 'presence'
        local away = prefix .. 'away:' .. user
        local kept = prefix .. 'kept:' .. user
        local function mark(call_id, grace)
          if redis.call('HGET', away, 'call') ~= call_id then
            redis.call('DEL', kept)
            redis.call('HSET', away, 'call', call_id, 'bytes', 0)
          end
          redis.call('PEXPIRE', away, grace)
          if redis.call('EXISTS', kept) == 1 then redis.call('PEXPIRE', kept, grace) end
        end

        if op == 'away' then
          if redis.call('HEXISTS', presence, user) == 1 then return 0 end
          mark(ARGV[4], ARGV[5])
          return 1
        elseif op == 'keep' then
          local call_id, grace, max_count, max_bytes, message = ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
          local node = redis.call('HGET', presence, user)
          if node then return {'present', node} end
          if redis.call('HGET', away, 'call') ~= call_id then
            if redis.call('GET', prefix .. 'user-call:' .. user) ~= call_id then return {'not-away'} end
            mark(call_id, grace)
          end
          local count = redis.call('RPUSH', kept, message)
          local bytes = redis.call('HINCRBY', away, 'bytes', #message)
          local out = {'kept'}
          while count > 1 and (count > max_count or bytes > max_bytes) do
            local oldest = redis.call('LPOP', kept)
            bytes = redis.call('HINCRBY', away, 'bytes', -#oldest)
            count = count - 1
            table.insert(out, oldest)
          end
          -- The list goes when the mark does.
          redis.call('PEXPIRE', kept, math.max(1, redis.call('PTTL', away)))
          return out
        elseif op == 'resume' then
          local marked = redis.call('HGET', away, 'call') and '1' or ''
          local messages = redis.call('LRANGE', kept, 0, -1)
          redis.call('DEL', away, kept)
          local fields = {}
          local id = redis.call('GET', prefix .. 'user-call:' .. user)
          if id then
            local f = redis.call('HMGET', prefix .. 'call:' .. id,
              'caller', 'callee', 'call_type', 'state', 'created_at', 'started_at')
            if f[1] then fields = {id, f[1], f[2], f[3], f[4], f[5], f[6] or ''} end
          end
          return {marked, fields, messages}
        elseif op == 'discard' then
          redis.call('DEL', away, kept)
          return 1
        end
        return redis.error_reply('unknown kept op ' .. tostring(op))
        """#
}
