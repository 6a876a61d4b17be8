# Helpers shared by the bench-*.sh scripts; source it, do not run it.

# freeport prints a free TCP port on 127.0.0.1.
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# field FILE EXPR prints a Python expression over the JSON document d in FILE.
field() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }

# median reads numbers, one per line, and prints their median.
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# wait_idle [TRIES] waits until the machine was at least 90% idle over 2 s,
# trying TRIES times (default 30, a minute): this VM is shared, and a burst of
# someone else's work during a variant would be charged to that variant.
wait_idle() {
  local tries=${1:-30} a b c d t0 i0 t1 i1
  for _ in $(seq "$tries"); do
    read -r _ a b c d _ </proc/stat; t0=$((a + b + c + d)) i0=$d
    sleep 2
    read -r _ a b c d _ </proc/stat; t1=$((a + b + c + d)) i1=$d
    (((i1 - i0) * 10 >= (t1 - t0) * 9)) && return 0
  done
  echo "machine still busy after $((2 * tries)) s; measuring anyway" >&2
}
