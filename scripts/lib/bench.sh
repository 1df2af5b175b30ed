# Helpers the bench scripts share; sourced from the project root.

# A free TCP port on 127.0.0.1.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 30 s until something listens on 127.0.0.1:$1.
wait_port() {
    for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "port $1 never opened" >&2
    return 1
}
