"""The example bottle and agent that ``bot-bottle init`` writes."""

from __future__ import annotations

EXAMPLE_BOTTLE_NAME = "dev"
EXAMPLE_AGENT_NAME = "coder"

EXAMPLE_BOTTLE = """\
---
# A bottle is the trust boundary: what the agent may reach, which secrets exist, which git
# remotes it may push to. Bottles live only in ~/.bot-bottle/bottles/.
description: General development bottle with package registries and read-only GitHub API.

env:
  # Literal values reach the agent as written.
  TZ: UTC
  # "?Prompt" is asked on the terminal at start and treated as a secret.
  # DB_PASSWORD: "?Password for the staging database"
  # "${HOST_VAR}" is read from your environment at start and treated as a secret.
  # SENTRY_DSN: "${SENTRY_DSN}"

egress:
  # 0: no log, 1: blocked requests, 2: every request.
  log: 1
  # Default deny: only these hosts are reachable, through the bottle's proxy.
  routes:
    - host: registry.npmjs.org
      matches:
        - methods: [GET, HEAD]
    - host: pypi.org
      matches:
        - methods: [GET, HEAD]
    - host: files.pythonhosted.org
      matches:
        - methods: [GET, HEAD]
    - host: api.github.com
      matches:
        - methods: [GET]
      # With a token, the proxy injects the real one; the agent only ever sees a placeholder.
      # Uncomment once GITHUB_TOKEN is set in your environment (a start refuses an unset one).
      # auth:
      #   scheme: bearer
      #   token_ref: GITHUB_TOKEN

git-gate:
  user:
    name: Bottled Agent
    email: agent@bot-bottle.invalid
  # repos:
  #   app:
  #     url: git@github.com:you/app.git
  #     ssh_key: ~/.ssh/bot_bottle_deploy_key
  #     known_hosts: "github.com ssh-ed25519 AAAA..."

agent_provider:
  template: claude
  # The host variable holding your Anthropic API key or Claude OAuth token.
  auth_token: ANTHROPIC_API_KEY
---
This bottle allows package downloads and read-only GitHub API calls, nothing else.
"""

EXAMPLE_AGENT = """\
---
# An agent runs in a bottle. Agents live in ~/.bot-bottle/agents/ or ./.bot-bottle/agents/.
bottle: dev
description: A careful general-purpose coding agent.
color: cyan
# skills: [my-skill]       # copied from your skill folders into the bottle
# git-gate:
#   user: {name: Your Name, email: you@example.com}
---
You are a careful software engineer working inside a bottle: a sandbox whose network reach is
limited to what its manifest allows. If a request is refused, explain what you needed and why
rather than trying to work around the refusal.
"""
