# Helpers shared by the bench-*.sh scripts; source it, do not run it.

# freeport prints a free TCP port on 127.0.0.1.
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# field FILE EXPR prints a Python expression over the JSON document d in FILE.
field() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }

# median reads numbers, one per line, and prints their median.
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
