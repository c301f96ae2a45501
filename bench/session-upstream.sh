#!/bin/sh
# The server command behind the listener in bench/sessions.ts (run as `sh session-upstream.sh
# <echo server command>`). The listener starts one per session. The first one to start (it
# wins the mkdir of $INTERCEPT_BENCH_ACTIVE) becomes the echo server: the active session's.
# Every later one, an idle session's, is this shell loop instead of another Node process, so
# that 1,000 idle sessions cost the machine about 1,000 small shells rather than 1,000 Node
# heaps; the listener holds a child process and its pipes for each either way. The loop
# answers initialize, tools/list (no tools) and any other request (an empty result), without
# parsing: the id is cut out of the line as it comes. Notifications get nothing.
if mkdir "$INTERCEPT_BENCH_ACTIVE" 2>/dev/null; then
  exec "$@"
fi
while IFS= read -r line; do
  case $line in
    *'"method"'*'"id":'* | *'"id":'*'"method"'*) ;;
    *) continue ;;
  esac
  id=${line#*\"id\":}
  id=${id%%[,\}]*}
  case $line in
    *'"method":"initialize"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":false}},"serverInfo":{"name":"bench-idle","version":"1.0.0"}}}\n' "$id" ;;
    *'"method":"tools/list"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"tools":[]}}\n' "$id" ;;
    *)
      printf '{"jsonrpc":"2.0","id":%s,"result":{}}\n' "$id" ;;
  esac
done
