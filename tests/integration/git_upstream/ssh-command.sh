#!/bin/sh
# Forced command for the one authorized key: log what was asked, then let git-shell run it.
printf '{"proto": "ssh", "command": "%s"}\n' "$(printf '%s' "$SSH_ORIGINAL_COMMAND" | tr -d '"\\')" >> /srv/log/access.log
exec git-shell -c "$SSH_ORIGINAL_COMMAND"
