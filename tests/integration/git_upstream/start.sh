#!/bin/sh
# First start: host key, a client key pair for the test to hand to the gate, seeded repos.
# A restart keeps all of them (the tests stop and start this container to play "upstream down").
set -eu
install -d -m 777 /srv/log
rm -f /srv/log/ready
touch /srv/log/access.log && chmod 666 /srv/log/access.log
[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
if [ ! -f /srv/client/id_ed25519 ]; then
    install -d -m 700 /srv/client
    ssh-keygen -q -t ed25519 -N '' -C gate -f /srv/client/id_ed25519
    install -d -m 700 -o git -g git /srv/git/.ssh
    printf 'command="/srv/ssh-command.sh",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty %s\n' \
        "$(cat /srv/client/id_ed25519.pub)" > /srv/git/.ssh/authorized_keys
    chown git:git /srv/git/.ssh/authorized_keys && chmod 600 /srv/git/.ssh/authorized_keys
fi
[ ! -f /srv/token ] || { chown git:git /srv/token; chmod 600 /srv/token; }
[ -d /srv/git/app.git ] || su -s /bin/sh git -c "/srv/seed.sh /srv/git app lib"
/usr/sbin/sshd -e
# HTTPS when the test copied certificates in: 443 with one from its CA, 8443 with one nobody trusts.
tls=""
[ ! -f /srv/tls/server.crt ] || tls="$tls --tls 443:/srv/tls/server.crt:/srv/tls/server.key"
[ ! -f /srv/tls/rogue.crt ] || tls="$tls --tls 8443:/srv/tls/rogue.crt:/srv/tls/rogue.key"
[ ! -d /srv/tls ] || chmod -R a+rX /srv/tls
# The HTTP side runs as the repos' owner: pushes over either protocol write the same files.
exec su -s /bin/sh git -c "exec python3 /srv/serve.py --root /srv/git --port 80 --token-file /srv/token --log /srv/log/access.log --ready /srv/log/ready$tls"
