# Helpers the bench scripts share; sourced from the project root.

# Lifts the per-user and per-address limits for the nodes started after it: a load generator's users all
# come from 127.0.0.1 and send far above a human's rate (README "Limits and abuse").
lift_node_limits() {
    export SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND=1000000 SWITCHBOARD_LIMITS_INVITES_PER_MINUTE=1000000
    export SWITCHBOARD_LIMITS_UPGRADES_PER_SECOND=1000000
    export SWITCHBOARD_SERVER_MAX_PENDING_CONNECTIONS_PER_ADDRESS=100000 SWITCHBOARD_SERVER_MAX_PENDING_CONNECTIONS=100000
}

# A free TCP port on 127.0.0.1.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 30 s until something listens on 127.0.0.1:$1.
wait_port() {
    for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "port $1 never opened" >&2
    return 1
}
