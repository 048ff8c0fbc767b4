#!/bin/sh
# seed.sh ROOT NAME...: one bare repo per NAME with the history the tests need.
#   main      README, then a commit adding an (old, fake) AWS key, then one removing it
#   legacy    the same history as main (a force-push target)
#   to-delete one extra commit
#   protected the upstream's own pre-receive hook refuses any update of it
set -eu
root=$1; shift
work=$(mktemp -d)
export GIT_AUTHOR_NAME=Upstream GIT_AUTHOR_EMAIL=upstream@example.test
export GIT_COMMITTER_NAME=Upstream GIT_COMMITTER_EMAIL=upstream@example.test
for name in "$@"; do
    git init -q --bare -b main "$root/$name.git"
    git -C "$root/$name.git" config http.receivepack true
    git -C "$root/$name.git" config receive.denyDeletes false
    rm -rf "$work/$name" && git init -q -b main "$work/$name" && cd "$work/$name"
    printf '# %s\n' "$name" > README.md && git add README.md && git commit -q -m "init $name"
    mkdir -p config && printf 'AWS_ACCESS_KEY_ID=AKIAQYLPMN5HFIQR7XYZ\n' > config/legacy.env
    git add config && git commit -q -m "legacy config"
    git rm -q config/legacy.env && git commit -q -m "remove the legacy key"
    git branch legacy && git branch protected
    git checkout -q -b to-delete && printf 'temporary\n' > tmp.txt && git add tmp.txt && git commit -q -m "temporary work"
    git push -q "$root/$name.git" main legacy protected to-delete
    # Installed after seeding, or it would refuse the seed itself.
    cat > "$root/$name.git/hooks/pre-receive" <<'HOOK'
#!/bin/sh
while read old new ref; do
    if [ "$ref" = refs/heads/protected ]; then
        echo "protected branch: changes to it go through review" >&2
        exit 1
    fi
done
HOOK
    chmod 755 "$root/$name.git/hooks/pre-receive"
done
rm -rf "$work"
